#!/usr/bin/env bash
# Run the test suite: plain pytest (on every core: pytest-xdist, one worker per core, whole
# files per worker so module fixtures are built once), then the MPI tests under
# mpirun -n 2 and -n 4.
# Markers select each step (pytest.ini): `mpi` tests run on 2 ranks, those also valid on
# 4 ranks carry `mpi4` and run on 4 too; tests/conftest.py fails a test run at a rank
# count its markers do not name, so none skips itself in a step that selected it.
#
# Usage: bash dev/run_tests.sh [--slow] [extra pytest args]
#   --slow   also run the heavy physics checks (marked slow; nightly, minutes to an hour)
# Exits non-zero if any part fails. Uses ./.venv (make install / dev/install.sh).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEL="not slow"
if [ "${1:-}" = "--slow" ]; then SEL=""; shift; fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
       OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader \
       OMPI_MCA_oob_tcp_if_include=lo GLOO_SOCKET_IFNAME=lo \
       OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 DS_ACCELERATOR=cpu
status=0
step() {  # name, command...; pytest exit 5 ("no tests collected") is a failure too
  local name=$1; shift
  echo "=== $name: $*"
  local t0=$SECONDS
  "$@"; local rc=$?
  echo "=== $name: exit $rc in $((SECONDS - t0)) s"
  [ $rc -eq 0 ] || status=1
}
mark() { if [ -n "$SEL" ]; then echo "$1 and $SEL"; else echo "$1"; fi; }
# HPC_RG_TEST_WORKERS: serial-step workers (default: one per core, at most 8; 0 = in process)
NCORES=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc 2>/dev/null || echo 1)
WORKERS=${HPC_RG_TEST_WORKERS:-$(( NCORES < 8 ? NCORES : 8 ))}
step "serial tests" $PY -m pytest -q --color=no -n "$WORKERS" \
  --dist loadfile --durations=15 -m "$(mark 'not mpi')" "$@"
step "MPI tests, 2 ranks" mpirun -n 2 $PY -m pytest -q --color=no --with-mpi -m "$(mark mpi)" "$@"
step "MPI tests, 4 ranks" mpirun -n 4 $PY -m pytest -q --color=no --with-mpi -m "$(mark mpi4)" "$@"
if [ $status -eq 0 ]; then echo "ALL TEST STEPS PASSED"; else echo "SOME TEST STEPS FAILED"; fi
exit $status
