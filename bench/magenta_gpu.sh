#!/usr/bin/env bash
# The Magenta GPU benchmark, one run of < 8 minutes on a lent GPU machine (CUDA JAX preinstalled, no network):
# tiny, mrt2_small and mrt2_base (random weights of the real shapes), fp32 and bf16, 1/2/3 live streams batched
# vs sequential vs the library's own generate() loop, p50/p99 per frame, host launch time, GPU memory, compile
# times, bf16 token agreement, batched-vs-alone token agreement; the slots experiment on mrt2_small.
# Writes $OUT/magenta_gpu.json after each model (a model cut off by the time limit loses only itself).
#
# Wheels for magenta-rt and what it imports travel in .whl/ (the device machine has no network); Cadenza is laid
# out on PYTHONPATH as setuptools' package-dir maps it. Where both already import (this checkout's .venv: the CPU
# dry run, e.g. `OUT=/tmp/o MODELS=tiny FRAMES=3 REPEATS=1 PYTHON=.venv/bin/python bench/magenta_gpu.sh`), the
# install is skipped. Overrides: MODELS, FRAMES (one number or model=N,…), REPEATS, PRECISIONS, EXPERIMENTS,
# AGREEMENT_FRAMES, DEVICE (gpu; cpu for the dry run), PYTHON, CACHE, XLA_EXPERIMENT (below).
set -euo pipefail
export PYTHONUNBUFFERED=1
OUT=${OUT:-out}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
t0=$(date +%s)
if ! "$PY" -c "import magenta_rt, cadenza.runtime.backends.magenta.backend" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    mkdir -p /tmp/site/cadenza
    cp -r cadenza/. /tmp/site/cadenza/
    cp -r runtime /tmp/site/cadenza/runtime
    cp -r sdk /tmp/site/cadenza/sdk
    cp -r proto /tmp/site/cadenza/proto
    export PYTHONPATH=/tmp/site
fi
DEVICE=${DEVICE:-gpu}
if [ "$DEVICE" = gpu ]; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
# budget (H100/H200, estimated from the last H200 run's compile and step times): mrt2_small ~3 min (fp32 + bf16,
# slots experiment); mrt2_base ~3.5 min (random weights ~1 min, fp32 + bf16); tiny fp32 ~1 min, last (the goals are
# on small and base); compiles of the batch sizes run 4 at a time. Give the run tool timeout_s=600; the JSON is
# written after each model, so a run cut short keeps the models it finished.
"$PY" bench/magenta.py --device "$DEVICE" --models "${MODELS:-mrt2_small,mrt2_base,tiny}" \
    --frames "${FRAMES:-tiny=30,mrt2_small=30,mrt2_base=15}" --repeats "${REPEATS:-3}" \
    --precisions "${PRECISIONS:-fp32,bf16,tiny=fp32}" --experiments "${EXPERIMENTS:-mrt2_small}" \
    --agreement-frames "${AGREEMENT_FRAMES:-16}" --cache "${CACHE:-/tmp/hf}" --json "$OUT/magenta_gpu.json" \
    > "$OUT/magenta_gpu.stdout"
# optional second experiment (a later call, if device time is left): the same mrt2_small fp32 rows under other
# XLA flags, e.g. XLA_EXPERIMENT="--xla_gpu_enable_command_buffer=FUSION,CUBLAS,CUBLASLT,CUSTOM_CALL,WHILE,CONDITIONAL"
if [ -n "${XLA_EXPERIMENT:-}" ]; then
    XLA_FLAGS="$XLA_EXPERIMENT" "$PY" bench/magenta.py --device "$DEVICE" --models mrt2_small --frames 30 --repeats 3 \
        --precisions fp32 --streams 1,3 --cache "${CACHE:-/tmp/hf}" --json "$OUT/magenta_gpu_xla.json" \
        > "$OUT/magenta_gpu_xla.stdout"
fi
echo "magenta_gpu.sh: done in $(( $(date +%s) - t0 )) s → $OUT/magenta_gpu.json"
