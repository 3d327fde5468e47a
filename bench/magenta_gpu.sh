#!/usr/bin/env bash
# The Magenta GPU benchmark as run on a lent GPU machine (CUDA JAX preinstalled, no network):
# wheels for magenta-rt and what it imports travel in .whl/ (see bench/magenta.py), Cadenza is laid
# out on PYTHONPATH as setuptools' package-dir maps it, then bench/magenta.py measures tiny,
# mrt2_small and mrt2_base (random weights) on the GPU into $OUT/magenta_gpu.json.
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
mkdir -p /tmp/site/cadenza
cp -r cadenza/. /tmp/site/cadenza/
cp -r runtime /tmp/site/cadenza/runtime
cp -r sdk /tmp/site/cadenza/sdk
cp -r proto /tmp/site/cadenza/proto
export PYTHONPATH=/tmp/site
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -c "import jax; print('jax', jax.__version__, jax.devices())"
python3 bench/magenta.py --device gpu --models "${MODELS:-tiny,mrt2_small,mrt2_base}" \
    --frames "${FRAMES:-50}" --repeats "${REPEATS:-5}" --cache /tmp/hf --json "$OUT/magenta_gpu.json"
