"""Sub-allocating one large "device" buffer, as wgpu or CuPy code does.

GPU APIs want few big buffers and many bindings inside them, each at an offset
aligned to the device's limit (minUniformBufferOffsetAlignment is 256 on most
hardware). The allocator cannot write headers into GPU memory, so it keeps
its metadata out of band: tlsf.OffsetAllocator hands out offsets only, and
the data is uploaded to them. A numpy array stands in for the GPU buffer here;
with wgpu the upload is `device.queue.write_buffer(buffer, offset, data)`,
with CuPy a slice of a cupy array.

Run it: python examples/device_buffer.py

Needs: numpy (pip install 'tlsf[numpy]'; in a checkout, pip install '.[examples]').
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import tlsf

ALIGNMENT = 256  # the device's binding offset alignment


class Binding(NamedTuple):
    """A range of the device buffer: what a bind group entry needs."""

    offset: int
    size: int


class DeviceBuffer:
    """One big buffer, sub-allocated in O(1) with alignment 256 and no waste."""

    def __init__(self, size: int) -> None:
        self.memory = np.zeros(size, dtype=np.uint8)  # stands in for the GPU buffer
        self.space = tlsf.OffsetAllocator(size, granularity=ALIGNMENT)

    def upload(self, data: np.ndarray) -> Binding:
        """Copy `data` into the buffer; OutOfMemoryError when nothing fits."""
        raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
        offset = self.space.alloc(raw.nbytes, align=ALIGNMENT)
        self.memory[offset : offset + raw.nbytes] = raw  # queue.write_buffer(...)
        return Binding(offset, raw.nbytes)

    def upload_many(self, arrays: list[np.ndarray]) -> list[Binding]:
        """One call for many uploads: all are placed, or none (alloc_many)."""
        raws = [np.ascontiguousarray(a).view(np.uint8).reshape(-1) for a in arrays]
        offsets = self.space.alloc_many([r.nbytes for r in raws], align=ALIGNMENT)
        for off, raw in zip(offsets, raws):
            self.memory[off : off + raw.nbytes] = raw
        return [Binding(int(off), r.nbytes) for off, r in zip(offsets, raws)]

    def read(self, b: Binding, dtype: type = np.uint8) -> np.ndarray:
        return self.memory[b.offset : b.offset + b.size].view(dtype)

    def release(self, b: Binding) -> None:
        self.space.free(b.offset)


def main() -> None:
    gpu = DeviceBuffer(64 << 20)
    # long-lived: a mesh's vertices and indices
    vertices = gpu.upload(np.random.default_rng(0).random((10_000, 3), dtype=np.float32))
    indices = gpu.upload(np.arange(30_000, dtype=np.uint32))
    # per frame: small uniform blocks, freed when the frame is done
    for frame in range(100):
        uniforms = gpu.upload_many([np.full(16, frame, dtype=np.float32) for _ in range(50)])
        assert all(u.offset % ALIGNMENT == 0 for u in uniforms)
        for u in uniforms:
            gpu.release(u)
    print(f"vertices at {vertices.offset}, indices at {indices.offset}; {gpu.space.stats()}")
    gpu.release(vertices)
    gpu.release(indices)
    assert gpu.space.stats().allocations == 0


if __name__ == "__main__":
    main()
