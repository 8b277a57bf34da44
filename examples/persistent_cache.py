"""A persistent key-value store in one heap file, that survives restarts and crashes.

Every entry is one allocation of a tlsf.FlexHeap file: [key length][value
length][key][value]. The heap's `root` is the offset of a hash table (open
addressing, 8-byte slots holding entry offsets; 0 empty, 1 deleted) whose first
word is its slot count. Nothing else is stored anywhere: reopening the file
finds everything again from `root`.

Crash safety comes from the order of the writes. Storing a key writes its new
entry block whole, then puts the block's offset into its slot (one 8-byte
store: the commit), then frees the old entry. Growing the table builds the
new one whole, then switches `root` (the commit), then frees the old one. A
process killed at any moment leaves each key either as it was or as it was
set, and `FlexHeap.open(path, recover=True)` repairs the heap itself (at
worst an entry written but not yet linked stays allocated: a leak, never a
wrong value).

    python examples/persistent_cache.py cache.tlsf      # counts its own runs

Needs: tlsf alone (no extra).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Iterator

import tlsf

EMPTY, DELETED = 0, 1
ENTRY = struct.Struct("=II")  # key length, value length


def _hash(key: bytes) -> int:
    """A hash that is the same in every process (str and bytes hashes are not)."""
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


class Store:
    def __init__(self, path: str, recover: bool = True) -> None:
        try:
            self.heap = tlsf.FlexHeap.open(path, recover=recover)
        except FileNotFoundError:
            self.heap = tlsf.FlexHeap.create(path, max_size=1 << 30)
        if not self.heap.root:
            self.heap.root = self._new_table(64)

    # -- the table: [slots][offset, offset, ...]

    def _new_table(self, slots: int) -> int:
        table = self.heap.alloc(8 * (slots + 1))
        v = self.heap.view(table)
        v[:] = bytes(len(v))
        struct.pack_into("=Q", v, 0, slots)
        v.release()
        return table

    def _slots(self) -> int:
        return int(struct.unpack_from("=Q", self.heap.view(self.heap.root, 8))[0])

    def _slot(self, i: int) -> int:
        return int(struct.unpack_from("=Q", self.heap.view(self.heap.root), 8 * (i + 1))[0])

    def _set_slot(self, i: int, entry: int) -> None:
        struct.pack_into("=Q", self.heap.view(self.heap.root), 8 * (i + 1), entry)

    def _entry(self, off: int) -> tuple[bytes, bytes]:
        v = self.heap.view(off)
        klen, vlen = ENTRY.unpack_from(v)
        key = bytes(v[ENTRY.size : ENTRY.size + klen])
        value = bytes(v[ENTRY.size + klen : ENTRY.size + klen + vlen])
        v.release()
        return key, value

    def _find(self, key: bytes) -> tuple[int, int]:
        """(slot of key or where it would go, entry offset or 0)."""
        n = self._slots()
        i = _hash(key) % n
        free = -1
        for _ in range(n):
            off = self._slot(i)
            if off == EMPTY:
                return (free if free >= 0 else i), 0
            if off == DELETED:
                free = i if free < 0 else free
            elif self._entry(off)[0] == key:
                return i, off
            i = (i + 1) % n
        return free, 0

    def _grow(self) -> None:
        """A table twice as large, built whole, then switched to (the commit)."""
        old = self.heap.root
        n = 2 * self._slots()
        entries = [self._slot(i) for i in range(n // 2)]
        table = self._new_table(n)
        tv = self.heap.view(table)
        for off in entries:
            if off > DELETED:
                i = _hash(self._entry(off)[0]) % n
                while struct.unpack_from("=Q", tv, 8 * (i + 1))[0]:
                    i = (i + 1) % n
                struct.pack_into("=Q", tv, 8 * (i + 1), off)
        tv.release()
        self.heap.root = table  # the commit
        self.heap.free(old)

    # -- the mapping

    def __setitem__(self, key: bytes, value: bytes) -> None:
        if len(self) * 4 >= self._slots() * 3:
            self._grow()
        entry = self.heap.alloc(ENTRY.size + len(key) + len(value))
        v = self.heap.view(entry)
        ENTRY.pack_into(v, 0, len(key), len(value))
        v[ENTRY.size : ENTRY.size + len(key) + len(value)] = key + value
        v.release()
        slot, old = self._find(key)
        self._set_slot(slot, entry)  # the commit
        if old:
            self.heap.free(old)

    def __getitem__(self, key: bytes) -> bytes:
        _, off = self._find(key)
        if not off:
            raise KeyError(key)
        return self._entry(off)[1]

    def __delitem__(self, key: bytes) -> None:
        slot, off = self._find(key)
        if not off:
            raise KeyError(key)
        self._set_slot(slot, DELETED)  # the commit
        self.heap.free(off)

    def __contains__(self, key: bytes) -> bool:
        return bool(self._find(key)[1])

    def keys(self) -> Iterator[bytes]:
        for i in range(self._slots()):
            off = self._slot(i)
            if off > DELETED:
                yield self._entry(off)[0]

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())

    def close(self) -> None:
        self.heap.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(path: str) -> None:
    with Store(path) as store:
        runs = int(store[b"runs"]) + 1 if b"runs" in store else 1
        store[b"runs"] = str(runs).encode()
        store[f"run {runs}".encode()] = b"x" * runs
        print(f"{path}: run {runs}, {len(store)} keys, heap {store.heap.size} bytes, {store.heap.stats()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "cache.tlsf")
