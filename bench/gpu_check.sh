#!/usr/bin/env bash
# The GPU checks in one run, for a machine with an NVIDIA GPU, PyTorch and no network.
#
#   bash bench/gpu_check.sh            (from the repository root; writes into $OUT)
#
# 1. installs the packages the machine lacks from the wheels in $WHEELS (default .whl:
#    sam2, segment-anything, rf-cutie, hydra-core, omegaconf, antlr4, iopath, diffusers,
#    importlib-metadata) into /tmp/site, without touching the machine's own packages;
# 2. prints nvidia-smi;
# 3. runs the neural tests on CUDA (tiny random-weight models) into $OUT/tests.txt;
# 4. runs bench/bench_gpu.py (full-size random weights) into $OUT/bench_gpu.txt.
# Each step has its own time limit; the whole run stays under about 6.5 minutes.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/tam-gpu-check}
WHEELS=${WHEELS:-.whl}
TESTS_LIMIT_S=${TESTS_LIMIT_S:-110}
BENCH_LIMIT_S=${BENCH_LIMIT_S:-270}
TEST_DEVICE=${TEST_DEVICE:-cuda}  # cpu: a dry run of this script on a machine without a GPU
mkdir -p "$OUT"

python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TAM_WEIGHTS_DIR=/tmp/tam-weights

nvidia-smi 2>&1 | tee "$OUT/nvidia-smi.txt" | head -20
python3 -c "import torch, sam2, cutie, segment_anything, diffusers, hydra, omegaconf
print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'diffusers', diffusers.__version__)" \
    || { echo "an installed package does not import"; exit 1; }

# The SAM 2 tracker tests read 8 DAVIS frames from ../shared/data; bring them when absent.
if [ ! -d ../shared/data/davis2017_432x240/schoolgirls ] && [ -d "$WHEELS/davis2017_432x240" ]; then
    mkdir -p ../shared/data && cp -r "$WHEELS/davis2017_432x240" ../shared/data/
fi

PARALLEL=""
python3 -c "import xdist" 2>/dev/null && PARALLEL="-n 4"
echo "== tests on $TEST_DEVICE (limit ${TESTS_LIMIT_S}s)"
TAM_TEST_DEVICE=$TEST_DEVICE timeout "$TESTS_LIMIT_S" python3 -m pytest -q -rs -p no:cacheprovider $PARALLEL \
    tests/test_sam2_tracker.py tests/test_track_cutie.py tests/test_sam_backends.py \
    tests/test_inpaint_diffusion.py tests/test_frame_feed.py > "$OUT/tests.txt" 2>&1
echo "tests exit code $?" | tee -a "$OUT/tests.txt"
tail -15 "$OUT/tests.txt"

echo "== bench/bench_gpu.py (limit ${BENCH_LIMIT_S}s)"
timeout "$BENCH_LIMIT_S" python3 bench/bench_gpu.py --out "$OUT/bench_gpu.txt" > "$OUT/bench_gpu.log" 2>&1
echo "bench exit code $?" | tee -a "$OUT/bench_gpu.txt"
cat "$OUT/bench_gpu.txt"
grep -iE "error|traceback" "$OUT/bench_gpu.log" | tail -5
