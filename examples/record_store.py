"""A record store: variable-size records in one file, its free space kept by
a tlsf.OffsetAllocator.

The allocator never touches the file: it only hands out offsets. The file is

    [header: magic, index offset, index length][records and the index ...]

and the index (key -> offset, length) is itself stored as a record. Reopening
a file rebuilds the allocator from the index: the gaps between records are
given to it with add_range(), and a record found in the file is given back
with add_range() when it is deleted (add_range coalesces touching ranges, so
the free space merges exactly as if the allocator had made the record).

Run it: python examples/record_store.py [path]

Needs: tlsf alone (no extra).
"""

from __future__ import annotations

import os
import struct
import sys

import tlsf

MAGIC = b"TLSFREC1"
HEADER = struct.Struct("<8sQQ")  # magic, index offset, index length
DATA_START = 4096  # the header's block; records start here
GRANULARITY = 64  # record offsets and sizes are multiples of it


class RecordStore:
    """Records (bytes) by key (str) in one file, with O(1) allocation of file space."""

    def __init__(self, path: str, *, grow: int = 1 << 20) -> None:
        self.grow = grow
        new = not os.path.exists(path) or os.path.getsize(path) == 0
        self.file = open(path, "w+b" if new else "r+b")  # noqa: SIM115 - closed in close()
        self.space = tlsf.OffsetAllocator(0, granularity=GRANULARITY)
        # key -> (offset, length, allocated): allocated is False for records found in
        # the file when it was opened, whose space the allocator does not hold yet
        self.index: dict[str, tuple[int, int, bool]] = {}
        self.index_at: tuple[int, int, bool] | None = None  # the stored index, as in self.index
        if new:
            self.file.write(HEADER.pack(MAGIC, 0, 0).ljust(DATA_START, b"\0"))
            self.end = DATA_START
        else:
            self._load()

    # -- file space

    def _alloc(self, n: int) -> int:
        """File space for n bytes; the file grows when nothing fits."""
        while True:
            try:
                return self.space.alloc(max(n, 1))
            except tlsf.OutOfMemoryError:
                more = max(self.grow, -(-n // GRANULARITY) * GRANULARITY)
                self.space.add_range(self.end, more)  # coalesces with the last range
                self.end += more
                self.file.truncate(self.end)

    def _release(self, offset: int, length: int, allocated: bool) -> None:
        if allocated:
            self.space.free(offset)
        else:  # space of a record read from the file: give it to the allocator
            self.space.add_range(offset, -(-max(length, 1) // GRANULARITY) * GRANULARITY)

    # -- records

    def put(self, key: str, data: bytes) -> None:
        old = self.index.get(key)
        if old and old[2] and self.space.resize(old[0], max(len(data), 1)):
            offset = old[0]  # rewritten in place (shrunk, or grown into free space)
        else:
            offset = self._alloc(len(data))
            if old:
                self._release(*old)
        self.file.seek(offset)
        self.file.write(data)
        self.index[key] = (offset, len(data), True)

    def get(self, key: str) -> bytes:
        offset, length, _ = self.index[key]
        self.file.seek(offset)
        return self.file.read(length)

    def delete(self, key: str) -> None:
        self._release(*self.index.pop(key))

    def keys(self) -> list[str]:
        return sorted(self.index)

    def __len__(self) -> int:
        return len(self.index)

    # -- the index, stored as a record

    def flush(self) -> None:
        """Write the index and point the header at it; the old index's space is freed last."""
        blob = b"".join(
            struct.pack("<HQQ", len(k.encode()), off, n) + k.encode() for k, (off, n, _) in self.index.items()
        )
        at = self._alloc(len(blob))
        self.file.seek(at)
        self.file.write(blob)
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.seek(0)
        self.file.write(HEADER.pack(MAGIC, at, len(blob)))
        self.file.flush()
        if self.index_at:
            self._release(*self.index_at)
        self.index_at = (at, len(blob), True)

    def _load(self) -> None:
        magic, at, length = HEADER.unpack(self.file.read(HEADER.size))
        if magic != MAGIC:
            raise ValueError(f"{self.file.name} is not a record store")
        self.end = os.path.getsize(self.file.name)
        self.file.seek(at)
        blob = self.file.read(length)
        pos = 0
        while pos < len(blob):
            klen, off, n = struct.unpack_from("<HQQ", blob, pos)
            pos += 18
            self.index[blob[pos : pos + klen].decode()] = (off, n, False)
            pos += klen
        # the allocator gets every gap between the records and the index
        taken = sorted((off, n) for off, n, _ in self.index.values())
        if length:
            taken = sorted(taken + [(at, length)])
        cursor = DATA_START
        for off, n in taken:
            if off > cursor:
                self.space.add_range(cursor, off - cursor)
            cursor = max(cursor, off + -(-max(n, 1) // GRANULARITY) * GRANULARITY)
        if self.end > cursor:
            self.space.add_range(cursor, self.end - cursor)
        self.index_at = (at, length, False) if length else None

    def close(self) -> None:
        self.flush()
        self.file.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(path: str) -> None:
    with RecordStore(path) as store:
        for i in range(1000):
            store.put(f"user:{i}", f"record {i} ".encode() * (1 + i % 50))
        for i in range(0, 1000, 3):
            store.delete(f"user:{i}")
        print(f"{len(store)} records, file {store.end} bytes, {store.space.stats()}")
    with RecordStore(path) as store:  # reopened: the allocator is rebuilt from the index
        assert store.get("user:1") == b"record 1 " * 2
        for i in range(0, 1000, 3):
            store.put(f"user:{i}", b"new " * 10)  # reuses the freed space
        print(f"{len(store)} records, file {store.end} bytes, {store.space.stats()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "records.tlsf")
