#!/bin/bash
# Run through the device tool from the repo root with carry [".gl"]: .gl/ held lmp.tgz (a LAMMPS
# build), whl/ and whl2/ (wheels of ase, vesin, vesin-torch, Snakemake and its needs for Python 3.12)
# and a-si/ (results/datasets/a-si copied from this machine).
# issue 22's second round of denoiser variants (the first call's tensors step failed on a -q flag)
set -u
T0=$(date +%s)
stamp() { echo "== $1 at $(( $(date +%s) - T0 )) s"; }
mkdir -p /tmp/site /tmp/lmp
tar xzf .gl/lmp.tgz -C /tmp/lmp
export LD_LIBRARY_PATH=/tmp/lmp/lib:/tmp/lmp/lib/mpich:${LD_LIBRARY_PATH:-}
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gl/whl/*.whl .gl/whl2/*.whl || exit 1
export PYTHONPATH=/tmp/site:/tmp/lmp/site:$PWD/src PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
SMK="python3 -m snakemake --configfile config/gpu.yaml --scheduler greedy"
mkdir -p results-gpu/datasets && cp -r .gl/a-si results-gpu/datasets/
$SMK --cores 1 --touch results-gpu/datasets/a-si/structures.extxyz > /tmp/touch.out 2>&1 || tail -n 5 /tmp/touch.out
timeout 60 $SMK --cores 4 results-gpu/datasets/a-si/tensors.pt > /tmp/tensors.out 2>&1 || { tail -n 8 /tmp/tensors.out; cat results-gpu/logs/datasets/a-si/tensors.log | tail -n 5; exit 1; }
ls -la results-gpu/datasets/a-si/
stamp tensors
timeout 390 python3 docs/experiments/denoiser_gpu.py --tensors results-gpu/datasets/a-si/tensors.pt --out /tmp/exp \
  --steps 1500 --batch 32 --held 64 --samples 64 \
  --variants sde-paper,sde-gauss-noise-upd,sde-upd-noghost,sde-upd-noghost-4x128,sde-upd-noghost-b128,ode-paper,ode-upd-noghost,ode-upd-noghost-log \
  > /tmp/exp.out 2>&1
stamp experiments
tail -n 14 /tmp/exp.out
cp /tmp/exp/summary.csv $OUT/ 2>/dev/null
for d in /tmp/exp/*/; do [ -f $d/row.json ] || { echo "unfinished: $d"; tail -n 2 $d/train.log; }; done
tar czf $OUT/exp.tgz /tmp/exp/*.out /tmp/exp/*/train.log /tmp/exp/*/row.json /tmp/exp/*/model.pt 2>/dev/null
stamp total
