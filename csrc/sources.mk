# The C core's sources, listed once. The Makefiles of tests/native, fuzz and
# benchmarks/native include this file; setup.py reads it. Paths are relative
# to csrc/.
TLSF_CORE_SOURCES := tlsf_common.c tlsf.c tlsf_offset.c tlsf_flex.c tlsf_image.c platform/unix.c platform/unix_shared.c
