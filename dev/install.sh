#!/usr/bin/env bash
# Install hpc_rg and its whole stack into ./.venv on Debian 12 (root) with Python 3.11.
#
# Usage: bash dev/install.sh            (idempotent: a second run takes seconds)
# Env:   PYTHON=python3.11  VENV=.venv  HPC_RG_SKIP_APT=1 (cluster: MPI/HDF5 from modules)
#        HPC_RG_TORCH="torch==2.13.0"  (e.g. a CUDA build on a GPU cluster)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}
VENV=${VENV:-$ROOT/.venv}
TORCH_SPEC=${HPC_RG_TORCH:-torch==2.13.0}
log() { printf '[install] %s\n' "$*"; }

# 1. System packages: OpenMPI + parallel HDF5 (skipped when already there or on a cluster).
if [ -z "${HPC_RG_SKIP_APT:-}" ]; then
  need=()
  for p in openmpi-bin libopenmpi-dev libhdf5-openmpi-dev pkg-config g++ make ninja-build; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "apt: ${need[*]}"
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
fi

# 2. Virtual environment and a constraints file that pins torch for every later pip call.
[ -x "$VENV/bin/python" ] || { log "venv: $VENV"; "$PYTHON" -m venv "$VENV"; }
PY="$VENV/bin/python"
CONSTRAINTS="$VENV/constraints.txt"
echo "$TORCH_SPEC" > "$CONSTRAINTS"
export PIP_CONSTRAINT="$CONSTRAINTS" PIP_DISABLE_PIP_VERSION_CHECK=1
# quiet pip; drop the warnings this machine's pip.conf prints for absent local indexes
pipq() { "$PY" -m pip install -q "$@" 2> >(grep -v "is ignored: it is neither" >&2); }
have() {  # are these modules installed? (found, not imported: fast; run outside the repo)
  (cd / && "$PY" - "$@" <<'PYEOF' >/dev/null 2>&1
import sys, importlib.util
sys.exit(0 if all(importlib.util.find_spec(m) for m in sys.argv[1:]) else 1)
PYEOF
  )
}

have torch || { log "torch ($TORCH_SPEC)"; pipq "$TORCH_SPEC"; }
have numpy yaml mpi4py cython pkgconfig wheel setuptools packaging pytest pytest_mpi xdist ninja matplotlib \
  || { log "python deps"; pipq numpy pyyaml mpi4py "cython>=3,<4" pkgconfig setuptools packaging wheel \
                                 pytest pytest-mpi pytest-xdist ninja matplotlib; }

# 3. h5py built against parallel HDF5 (never with build isolation, never from pip's cache).
if ! "$PY" -c 'import h5py,sys; sys.exit(0 if h5py.get_config().mpi else 1)' >/dev/null 2>&1; then
  log "h5py against parallel HDF5 (~2.5 min)"
  "$PY" -m pip uninstall -y -q h5py >/dev/null 2>&1 || true
  CC=${MPICC:-mpicc} HDF5_MPI=ON HDF5_PKGCONFIG_NAME=${HDF5_PKGCONFIG_NAME:-hdf5-openmpi} \
    pipq --no-binary=h5py --no-build-isolation --no-cache-dir h5py
  "$PY" -c 'import h5py; assert h5py.get_config().mpi, "h5py built without MPI"'
fi

# 4. DeepSpeed with its CPU ops pre-built (shared-memory comm, fused Adam) so runs never JIT.
if ! have deepspeed; then
  log "deepspeed with pre-built CPU ops (~2.5 min)"
  DS_BUILD_SHM_COMM=1 DS_BUILD_FUSED_ADAM=1 \
    pipq --no-build-isolation --no-cache-dir deepspeed
fi

# 5. The package itself, editable.
if ! have hpc_rg || [ ! -x "$VENV/bin/hpc-rg" ]; then
  log "hpc_rg (editable)"
  pipq --no-build-isolation --no-deps -e "$ROOT"
fi
torch_version=$(cd / && "$PY" -c 'from importlib.metadata import version; print(version("torch"))')
case "$TORCH_SPEC" in
  torch==*) [ "${torch_version%%+*}" = "${TORCH_SPEC#torch==}" ] \
    || { echo "[install] torch $torch_version installed, expected $TORCH_SPEC; remove $VENV and rerun" >&2; exit 1; } ;;
esac
# 6. The compiled Monte Carlo kernel (sample.kernel: auto), built once now instead of in the first run.
(cd / && "$PY" -c 'from hpc_rg.mc.compiled import load_library; load_library()
from hpc_rg.mc.msc.compiled import load_library as msc; msc()' >/dev/null 2>&1) \
  && log "compiled Monte Carlo kernels (float checkerboard, multi-spin coded): ready" \
  || log "compiled Monte Carlo kernel: not available here (runs use the torch kernel and say why)"
log "done: $VENV (torch $torch_version)"
