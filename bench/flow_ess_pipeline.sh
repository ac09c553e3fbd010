#!/usr/bin/env bash
# docs/flows-ess.md section 8 (issue #17): the same stages and overrides the measured runs used
# (they were started one by one from a scratch script; the deck then had linear_kernel 5, so
# reuse_k3 ran with --set train.flow.linear_kernel=3, the deck's value now): inputs/phi4_flow_reuse.yaml
# (phi4 lambda = 0.01, kappa = 0.20, 4 x 4 -> 64^2) through the pipeline's train and upscale
# stages, one process each (singleton MPI, one torch thread), all variants on the same
# samples.h5; CPU time (user + sys) per stage from /usr/bin/time. Then
# bench/flow_ess_pipeline.py collects ESS/N, KL, acceptance per level and the CPU times into
# bench/results/flow-ess-pipeline.json. Runs may overlap (CPU time, not wall, is compared).
set -u
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
       DS_ACCELERATOR=cpu OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_btl=self,vader \
       OMPI_MCA_oob_tcp_if_include=lo GLOO_SOCKET_IFNAME=lo PYTHONUNBUFFERED=1
PY=${PY:-.venv/bin/python}
DECK=inputs/phi4_flow_reuse.yaml
R=runs/flow_ess_pipe
run() {  # name, --set overrides...: train + upscale in $R/name
  local name=$1; shift
  local d=$R/$name
  mkdir -p $d && cp $R/samples/samples.h5 $d/
  for st in train upscale; do
    /usr/bin/time -f "$st cpu_user %U cpu_sys %S wall %e" -o $d/time_$st.txt \
      $PY -m hpc_rg $DECK --stage $st --set run.output=$d "$@" > $d/log_$st.txt 2>&1 || return 1
  done
}
mkdir -p $R/samples
$PY -m hpc_rg $DECK --stage sample --set run.output=$R/samples
L0="--set train.flow.linear_kernel=0"
EACH="--set train.flow.reuse_first_level=false"
run reuse_k5 --set train.flow.linear_kernel=5
run each $L0 $EACH --set train.flow.steps=200        # today: every level 200 steps, transfer
run reuse_k3                                         # the deck as shipped: k = 3, reuse
run reuse_k3_b256 --set train.flow.batch=256
run reuse_k0 $L0
run each_l1long $L0 $EACH --set train.flow.retrain_steps=200
$PY bench/flow_ess_pipeline.py $R bench/results/flow-ess-pipeline.json
