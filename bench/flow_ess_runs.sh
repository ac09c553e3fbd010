#!/bin/sh
# The measurements of docs/flows-ess.md (issue #17), one process, one thread, in this order.
# Each kappa: phase 1 (1.5 CPU-min, lr 3e-3, batch 32) from the identity, phase 2 (3 CPU-min,
# batch 64, cosine lr 1e-3 -> 3e-5) from phase 1; the one level is then evaluated unchanged
# at fine sizes 16..128 and reused at every level of an MH-corrected chain from 4 x 4.
set -e
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
R=runs/flow_ess
mkdir -p $R
run() {  # kappa train_L batch1 batch2 tag
    $PY bench/flow_ess.py --kappa $1 --train-L $2 --cpu-minutes 1.5 --linear-kernel 5 \
        --batch $3 --lr 3e-3 --eval-L $2 --tag $5-p1 --out $R/$5-p1.json --save $R/$5-p1.pt
    $PY bench/flow_ess.py --kappa $1 --train-L $2 --cpu-minutes 3 --linear-kernel 5 \
        --load $R/$5-p1.pt --batch $4 --lr 1e-3 --lr-final 3e-5 --eval-L 8 16 32 64 \
        --tag $5 --out bench/results/flow-ess-$5.json --save $R/$5.pt
}
run 0.2 8 32 64 k0.20
run 0.26 16 8 16 k0.26
run 0.3 8 32 64 k0.30
for k in 0.20 0.26 0.30; do
    $PY bench/flow_ess_chain.py --kappa $k --model $R/k$k.pt --linear-kernel 5 --levels 4 \
        --chains 8 --rows 256 --mc-sizes 16 32 --out bench/results/flow-ess-chain-k$k.json
done
