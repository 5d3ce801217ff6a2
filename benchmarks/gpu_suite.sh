#!/usr/bin/env bash
# The GPU suite: ONE command for the first CUDA machine. From the repository root:
#
#     benchmarks/gpu_suite.sh              # on a CUDA machine: under 9 minutes (its parts' time limits; never run on a GPU yet)
#     benchmarks/gpu_suite.sh --dry-run    # anywhere: the same steps at tiny sizes on the CPU (tests/test_gpu_suite.py)
#
# Steps (each bounded by a time limit, so that the suite ends in under 9 minutes; a step that fails or times out
# is reported at the end and the next one runs):
#   1. install the project from this working tree over the machine's torch / triton / timm / torchvision:
#      pip install --no-build-isolation --no-deps -e .   (dry run: only checks that `import zoo` works)
#   2. the CUDA tests of the kernels (fp32 / fp16 / bf16: tests marked `cuda` in tests/test_correlation.py and
#      tests/test_contrastive.py), as JUnit XML      (dry run: collected, not run)
#   3. benchmarks/correlation.py --quick: Triton vs the torch reference vs the naive unfold, achieved TFLOP/s and
#      TB/s against the device's peak                 (dry run: one tiny shape, Triton through the interpreter)
#   4. benchmarks/contrastive.py at N = M = 4096 and 16384 (K = 128) and MoCo's 65536 queue: Triton vs the torch
#      path vs materialised logits                    (dry run: N = 64, interpreter)
#   5. benchmarks/train_step.py --groups gpu: hcml_r2d_50 at T=16, 224 px, batch 8, bf16: the plain backbone, HCML
#      with the reference kernels, with the Triton kernels, compiled, deployed  (dry run: hcml_r2d_18, tiny clips)
#   6. one summary table (benchmarks/gpu_summary.py) of every JSON written, all named after the device, under
#      benchmarks/results/ (dry run: a temporary folder unless ZOO_BENCH_RESULTS says otherwise).
#
# Options: --dry-run; --python PY (default: python on PATH, or $PYTHON); --skip-install.
set -uo pipefail

DRY_RUN=0
SKIP_INSTALL=0
PY="${PYTHON:-python}"
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY_RUN=1 ;;
        --skip-install) SKIP_INSTALL=1 ;;
        --python) shift; PY="$1" ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "gpu_suite.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT" || exit 1
export HF_HUB_OFFLINE=1
START=$(date +%s)
FAILED=()

if [ "$DRY_RUN" = 1 ]; then
    export ZOO_BENCH_RESULTS="${ZOO_BENCH_RESULTS:-$(mktemp -d -t zoo-gpu-suite-XXXXXX)}"
    DEVICE=cpu
    T_INSTALL=120; T_TESTS=120; T_CORR=120; T_NCE=120; T_STEP=300
else
    DEVICE=cuda
    # The parts' time limits (seconds): 20 + 10 + 120 + 60 + 60 + 150 + 100 = 520 at the very worst (under 9
    # minutes with the summary); each part's repetitions are bounded too, so they typically end far sooner.
    T_INSTALL=20; T_TESTS=120; T_CORR=60; T_NCE=60; T_STEP=150; T_COMPILE=100
fi
RESULTS="${ZOO_BENCH_RESULTS:-$ROOT/benchmarks/results}"
mkdir -p "$RESULTS"
JUNIT="$RESULTS/.gpu_tests.xml"
rm -f "$JUNIT"

run() {  # run NAME TIMEOUT COMMAND...: time it, keep going on failure
    local name="$1" limit="$2"
    shift 2
    local t0
    t0=$(date +%s)
    echo "=== $name (at most ${limit} s): $*"
    timeout --kill-after=10 "$limit" "$@"
    local rc=$?
    echo "=== $name: exit $rc after $(( $(date +%s) - t0 )) s"
    if [ "$rc" != 0 ]; then
        FAILED+=("$name (exit $rc$([ "$rc" = 124 ] && echo ', timed out'))")
    fi
    return 0
}

# 1. install
if [ "$DRY_RUN" = 1 ] || [ "$SKIP_INSTALL" = 1 ]; then
    run install "$T_INSTALL" "$PY" -c "import zoo, zoo.kernels; print('zoo from', zoo.__file__)"
else
    run install "$T_INSTALL" "$PY" -m pip install --no-build-isolation --no-deps -q -e .
    run cuda-check 10 "$PY" -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print(torch.cuda.get_device_name(0), 'torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version())"
fi
SLUG=$("$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); from _common import device_slug; print(device_slug('$DEVICE'))" 2>/dev/null || echo "$DEVICE")

# 2. the CUDA tests of the kernels
if [ "$DRY_RUN" = 1 ]; then
    run tests "$T_TESTS" "$PY" -m pytest -q --collect-only -m cuda -p no:cacheprovider \
        tests/test_correlation.py tests/test_contrastive.py
else
    run tests "$T_TESTS" "$PY" -m pytest -q -m cuda -p no:cacheprovider --junitxml="$JUNIT" \
        tests/test_correlation.py tests/test_contrastive.py
fi

# 3, 4. the kernel benchmarks
if [ "$DRY_RUN" = 1 ]; then
    run correlation "$T_CORR" "$PY" benchmarks/correlation.py --device cpu --dry-run --threads 1
    run contrastive "$T_NCE" "$PY" benchmarks/contrastive.py --device cpu --dry-run --threads 1
else
    run correlation "$T_CORR" "$PY" benchmarks/correlation.py --device cuda --quick --repeats 10
    run contrastive "$T_NCE" "$PY" benchmarks/contrastive.py --device cuda --sizes 4096 16384 --dims 128 \
        --moco-queue 65536 --repeats 10
fi

# 5. training steps: eager first, then compiled, merged into one JSON (a compile that runs out of time leaves the
#    eager figures)
if [ "$DRY_RUN" = 1 ]; then
    run train_step "$T_STEP" "$PY" benchmarks/train_step.py --device cpu --dry-run --groups gpu gpu_compile \
        --name "train_step_$SLUG"
else
    run train_step "$T_STEP" "$PY" benchmarks/train_step.py --device cuda --groups gpu --model hcml_r2d_50 \
        --frames 16 --size 224 --batch 8 --amp bf16 --steps 10 --warmup 3
    run train_step_compiled "$T_COMPILE" "$PY" benchmarks/train_step.py --device cuda --groups gpu_compile \
        --model hcml_r2d_50 --frames 16 --size 224 --batch 8 --amp bf16 --steps 10 --warmup 2 --merge
fi

# 6. the summary
echo
echo "=== summary: $RESULTS ($(( $(date +%s) - START )) s in all)"
"$PY" benchmarks/gpu_summary.py --device-slug "$SLUG" --results "$RESULTS" \
    $([ -f "$JUNIT" ] && echo --junit "$JUNIT")
rm -f "$JUNIT"
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "failed steps: ${FAILED[*]}"
    exit 1
fi
echo "every step finished"
