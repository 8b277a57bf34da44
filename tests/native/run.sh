#!/usr/bin/env bash
# tests/native/run.sh: the native hardening tests of the C core, for CI.
#
# Installs nothing. Prerequisites on a fresh Debian 12 (bookworm) machine:
#   apt-get update
#   apt-get install -y --no-install-recommends make gcc libc6-dev clang libclang-rt-14-dev
# (gcc builds the stress test with ASan + UBSan; clang and libclang-rt-14-dev,
# which holds libFuzzer and clang's sanitizer runtimes, build the fuzzer.)
#
# Runs:
#   make -C tests/native check   the stress tests of both engines, 10M operations each, the
#                                out-of-band engine's corruption catalogue, the poisoning check and
#                                crash consistency by fault injection (about 1.5 min here)
#   make -C fuzz run             the libFuzzer targets (both engines), FUZZ_SECONDS each (default 60)
# (both, even when the first fails) and fails if either fails.
# Environment: FUZZ_SECONDS, CC, CLANG, OPS, SEED, SRC_DIR.
set -euo pipefail
cd "$(dirname "$0")/../.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
export FUZZ_SECONDS

failed=0

echo "== native stress tests of both engines of the C core, the offset corruption catalogue, crash consistency (ASan + UBSan)"
make -C tests/native check || { echo "native: the stress test FAILED"; failed=$((failed + 1)); }

echo "== libFuzzer targets for both engines, ${FUZZ_SECONDS} s each (ASan + UBSan)"
make -C fuzz run || { echo "native: the fuzzer FAILED (input in fuzz/build/artifacts/)"; failed=$((failed + 1)); }

echo "native: $((2 - failed)) passed, ${failed} failed"
exit $((failed > 0))
