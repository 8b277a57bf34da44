"""The twin of ``csrc/platform/``: memory from the operating system for the
growable heaps, kept apart from the algorithm. `unix` mirrors ``unix.c``."""
