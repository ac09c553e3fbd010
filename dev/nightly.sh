#!/usr/bin/env bash
# Nightly-style check: the whole test suite including the heavy physics tests (marked slow),
# then the quick benchmarks. Takes about 30-60 minutes on 2 cores. Keep it green: CI runs only
# the fast subset (dev/run_tests.sh) and relies on this for the long statistics.
#
# Usage: bash dev/nightly.sh            (after make install)
set -uo pipefail
cd "$(dirname "$0")/.."
status=0
bash dev/run_tests.sh --slow || status=1
if [ -f bench/bench_checkerboard.py ]; then
  .venv/bin/python bench/bench_checkerboard.py --quick || status=1
fi
exit $status
