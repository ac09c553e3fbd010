#!/usr/bin/env bash
# Byte-identity check for a refactor: run the small decks of this folder (every method,
# model and correction: CNN Ising/EA/phi4, flow_rg MH / IR+HMC / UV+auto, flow_checkerboard)
# on 2 ranks with the code at CODE_ROOT and fingerprint the outputs (dev/golden.py).
#
# Usage: bash dev/golden/run.sh CODE_ROOT LABEL   -> /tmp/golden/LABEL.txt
#   git worktree add /tmp/before <old commit>; bash dev/golden/run.sh /tmp/before before
#   bash dev/golden/run.sh "$PWD" after; diff /tmp/golden/before.txt /tmp/golden/after.txt
# The decks write to /tmp/golden/out (the path is part of the stored config, so both runs
# must use it). About 5-10 minutes on 2 cores.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$1" && pwd); LABEL=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
       DS_ACCELERATOR=cpu OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader \
       OMPI_MCA_oob_tcp_if_include=lo GLOO_SOCKET_IFNAME=lo PYTHONUNBUFFERED=1
PY=$HERE/../../.venv/bin/python
rm -rf /tmp/golden/out "/tmp/golden/$LABEL"; mkdir -p "/tmp/golden/$LABEL"
for deck in "$HERE"/*.yaml; do
  d=$(basename "$deck" .yaml)
  (cd "$ROOT" && PYTHONPATH=$ROOT mpirun -n 2 "$PY" -m hpc_rg "$deck" > "/tmp/golden/$LABEL/$d.log" 2>&1)
  echo "$d rc=$?"
done
"$PY" "$HERE/../golden.py" /tmp/golden/out/* > "/tmp/golden/$LABEL.txt"
mv /tmp/golden/out "/tmp/golden/$LABEL/out"
echo "fingerprint: /tmp/golden/$LABEL.txt ($(wc -l < "/tmp/golden/$LABEL.txt") lines)"
