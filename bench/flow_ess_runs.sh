#!/bin/sh
# The measurements of docs/flows-ess.md (issue #17), exactly as run: one process, one thread,
# one after the other. Per kappa: phase 1 (1.5 CPU-min, lr 3e-3) from the identity, phase 2
# (3 CPU-min, twice the batch, cosine lr 1e-3 -> 3e-5) from phase 1; the one level is then
# evaluated unchanged at fine sizes 16..128 and reused at every level of an MH-corrected chain
# from 4 x 4 Monte Carlo (z-scores against Monte Carlo at 16^2 and 32^2).
set -e
export OMP_NUM_THREADS=1
PY=${PY:-.venv/bin/python}
R=runs/flow_ess
mkdir -p $R
# diagnosis: today's level, 0.5 CPU-min, evaluated at every size
$PY bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 0.5 --eval-L 4 8 16 32 --n-eval 512
# kappa = 0.20 (run B = phase 1, run C = phase 2 in the doc)
$PY bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 1.5 --linear-kernel 5 --eval-L 8 16 32 \
    --tag B-lin5 --out $R/B.json --save $R/B.pt
$PY bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 3 --linear-kernel 5 --load $R/B.pt \
    --batch 64 --lr 1e-3 --lr-final 3e-5 --eval-L 8 16 32 --tag C-lin5-cont-cos-b64 --out $R/C.json \
    --save $R/k0.20.pt
$PY bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 0 --linear-kernel 5 --load $R/k0.20.pt \
    --eval-L 8 16 32 64 --tag k0.20 --out bench/results/flow-ess-k0.20.json
# kappa = 0.26 (near the transition: trained on 16^2 -> 32^2, batch 8 / 16: same sites per step)
$PY bench/flow_ess.py --kappa 0.26 --train-L 16 --cpu-minutes 1.5 --linear-kernel 5 --batch 8 \
    --lr 3e-3 --eval-L 16 --tag k0.26-p1 --out $R/k0.26-p1.json --save $R/k0.26-p1.pt
$PY bench/flow_ess.py --kappa 0.26 --train-L 16 --cpu-minutes 3 --linear-kernel 5 \
    --load $R/k0.26-p1.pt --batch 16 --lr 1e-3 --lr-final 3e-5 --eval-L 8 16 32 64 --tag k0.26 \
    --out bench/results/flow-ess-k0.26.json --save $R/k0.26.pt
$PY bench/flow_ess.py --kappa 0.26 --train-L 16 --cpu-minutes 6 --linear-kernel 5 --load $R/k0.26.pt \
    --batch 32 --lr 3e-4 --lr-final 1e-5 --eval-L 16 32 64 --tag k0.26-p3 \
    --out bench/results/flow-ess-k0.26-phase3.json --save $R/k0.26-p3.pt
# kappa = 0.30 (broken phase)
$PY bench/flow_ess.py --kappa 0.3 --train-L 8 --cpu-minutes 1.5 --linear-kernel 5 --batch 32 \
    --lr 3e-3 --eval-L 8 --tag k0.30-p1 --out $R/k0.30-p1.json --save $R/k0.30-p1.pt
$PY bench/flow_ess.py --kappa 0.3 --train-L 8 --cpu-minutes 3 --linear-kernel 5 \
    --load $R/k0.30-p1.pt --batch 64 --lr 1e-3 --lr-final 3e-5 --eval-L 8 16 32 64 --tag k0.30 \
    --out bench/results/flow-ess-k0.30.json --save $R/k0.30.pt
# the same level at every level of an MH-corrected chain 4 -> 8 -> 16 -> 32 (-> 64 for 0.20)
$PY bench/flow_ess_chain.py --kappa 0.20 --model $R/k0.20.pt --linear-kernel 5 --levels 4 \
    --chains 8 --rows 256 --mc-sizes 16 32 --out bench/results/flow-ess-chain-k0.20.json
for k in 0.26 0.30; do
    $PY bench/flow_ess_chain.py --kappa $k --model $R/k$k.pt --linear-kernel 5 --levels 3 \
        --chains 8 --rows 256 --mc-sizes 16 32 --out bench/results/flow-ess-chain-k$k.json
done
# kappa = 0.20 at 128^2 with 1024 proposals (the table's first 128^2 value used 256)
$PY bench/flow_ess.py --kappa 0.2 --train-L 8 --cpu-minutes 0 --linear-kernel 5 --load $R/k0.20.pt \
    --eval-L 64 --n-eval-64 1024 --tag k0.20-128 --out bench/results/flow-ess-k0.20-128.json
