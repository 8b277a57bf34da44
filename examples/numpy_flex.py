"""A numpy workload whose every array lives in one tlsf.FlexHeap.

A small n-body-style simulation: each step makes a dozen temporary arrays
(differences, distances, forces), as numpy code does. Inside
`tlsf.numpy.use(heap)` numpy takes all of them from the heap, in constant
time, in memory the heap reserved for itself. The heap keeps its free pages
while the loop runs (trim_threshold=None: temporaries of the same sizes come
back every step, and pages given back would be faulted in again) and gives
them back to the system with trim() when it is done. The state that must outlive the loop is made with
`heap.ndarray`, an array that owns its allocation. The same simulation with
numpy's default allocator gives the same numbers.

    python examples/numpy_flex.py [bodies] [steps]

Needs: numpy (pip install 'tlsf[numpy]'; in a checkout, pip install '.[examples]').
The handler needs the C extension: with the pure-Python twin only
heap.ndarray is used.
"""

from __future__ import annotations

import sys

import numpy as np

import tlsf
import tlsf.numpy


def simulate(pos: np.ndarray, vel: np.ndarray, steps: int, dt: float = 1e-3) -> None:
    """Advance pos and vel (n x 3) in place: all-pairs softened gravity."""
    for _ in range(steps):
        d = pos[None, :, :] - pos[:, None, :]  # n x n x 3 temporaries, every step
        r2 = (d * d).sum(axis=2) + 1e-2
        f = (d / (r2 * np.sqrt(r2))[:, :, None]).sum(axis=1)
        vel += dt * f
        pos += dt * vel


def initial(n: int, out_pos: np.ndarray, out_vel: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    out_pos[:] = rng.standard_normal((n, 3))
    out_vel[:] = 0.0


def main(n: int = 200, steps: int = 50) -> None:
    with tlsf.FlexHeap(trim_threshold=None) as heap:
        pos, vel = heap.ndarray((n, 3)), heap.ndarray((n, 3))  # the state: arrays that own allocations
        initial(n, pos, vel)
        if tlsf.IMPLEMENTATION == "c":
            with tlsf.numpy.use(heap) as handler:  # every temporary of the loop comes from the heap
                simulate(pos, vel, steps)
            print(f"{steps} steps of {n} bodies in the heap: it grew to {heap.size:,} bytes, "
                  f"{tlsf.numpy.fallbacks(handler)} arrays went elsewhere")
        else:
            simulate(pos, vel, steps)
        print(f"live allocations after the loop: {heap.stats().allocations} (pos and vel)")

        ref_pos, ref_vel = np.empty((n, 3)), np.empty((n, 3))
        initial(n, ref_pos, ref_vel)
        simulate(ref_pos, ref_vel, steps)  # the same, with numpy's own allocator
        same = np.array_equal(pos, ref_pos) and np.array_equal(vel, ref_vel)
        print(f"same result as numpy's default allocator: {same}")
        energy = 0.5 * float((vel * vel).sum())
        del pos, vel  # frees them into the heap; the heap could not close while they lived
        print(f"kinetic energy {energy:.6f}; {heap.trim():,} bytes given back to the system by trim()")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
