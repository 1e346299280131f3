#!/usr/bin/env bash
# The device check: on a machine with an NVIDIA GPU, build ctrgcn with its CUDA backend, run the GPU
# tests and the GPU benchmark, and leave the logs under $OUT (at most seven files). Finishes in under
# 8 minutes: each stage has a time limit, and the benchmark shrinks to --quick when time is short.
#
# Made for the lent nvidia-h200 machine: Python 3.12 with NumPy, PyTorch 2.11 (CUDA 13.0) and pytest,
# nvcc 13.0, no package index. The build runs without isolation there. What the project needs beyond
# that image (scipy-openblas32, the OpenBLAS the CPU backend links) travels as wheels in .whl/, which
# git ignores; prepare it once, in the repository's root, on a machine with pip:
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
#       -d .whl scipy-openblas32
#
# The golden tests read ../shared/golden, which does not travel; a subset that fits the transfer limit
# can, in another ignored folder (the tests find it through CTRGCN_SHARED):
#
#   echo /.shared/ >> .git/info/exclude
#   mkdir -p .shared/golden/official .shared/golden/paddlevideo
#   cp ../shared/golden/official/ntu_{weights,eval,train}.npz .shared/golden/official/
#   cp ../shared/golden/paddlevideo/CTRGCN_lightV2_{weights,eval,train}.npz .shared/golden/paddlevideo/
#
# then run `bash benchmarks/gpu_check.sh` there with .whl (and .shared) carried along.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu_check_out}"
mkdir -p "$OUT"
T0=$(date +%s)
elapsed() { echo $(($(date +%s) - T0)); }
note() { echo "[$(elapsed)s] $*" | tee -a "$OUT/summary.txt"; }
: >"$OUT/summary.txt"
STATUS=0

if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl ||
        { note "FAIL: the carried wheels do not install"; exit 1; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import scipy_openblas32" 2>/dev/null && ! pkg-config --exists openblas 2>/dev/null; then
    note "FAIL: no OpenBLAS for the CPU backend: carry scipy-openblas32 in .whl/ (see this script's header)"
    exit 1
fi
{
    nvidia-smi
    (command -v nvcc >/dev/null && nvcc --version) || /usr/local/cuda/bin/nvcc --version
    python3 -c "import sys, numpy; print(sys.version); print('numpy', numpy.__version__)"
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
} >"$OUT/machine.txt" 2>&1

# ---- build: in place, no isolation; CTRGCN_CUDA=1 makes a missing backend a failure
export CTRGCN_CUDA=1 CTRGCN_CUDA_JOBS=8 PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" # this checkout's ctrgcn, built in place, for every stage
[ -d .shared/golden ] && export CTRGCN_SHARED="$PWD/.shared"
if ! timeout 200 python3 setup.py build_ext --inplace -j 16 >"$OUT/build.log" 2>&1; then
    note "FAIL: build (log: build.log)"
    tail -40 "$OUT/build.log" >>"$OUT/summary.txt"
    exit 1
fi
note "build: ok"
python3 -c "import ctrgcn; print('ctrgcn.cuda: built', ctrgcn.cuda.built(), 'devices', ctrgcn.cuda.device_count(), ctrgcn.cuda.reason())" 2>&1 |
    tee -a "$OUT/summary.txt"
# without a usable device every GPU test would skip and pytest would exit 0: stop here instead
if ! python3 -c "import ctrgcn, sys; sys.exit(0 if ctrgcn.cuda.is_available() else 1)"; then
    note "FAIL: CUDA unavailable: $(python3 -c 'import ctrgcn; print(ctrgcn.cuda.reason())' 2>&1)"
    exit 1
fi
# two copies of cuBLAS 13 (the toolkit's, which ctrgcn links, and torch's wheel): both must load together
python3 -c "import ctrgcn; ctrgcn.cuda.is_available(); import torch; print('torch after ctrgcn: cuda', torch.cuda.is_available())" \
    >>"$OUT/machine.txt" 2>&1 || note "warning: torch does not load after ctrgcn (see machine.txt)"

# ---- tests: tests/test_cuda.py, then every op of the backend-ops suite on "cuda"
timeout 140 python3 -m pytest -q -rfEs -p no:cacheprovider tests/test_cuda.py >"$OUT/pytest_cuda.log" 2>&1
rc=$?
note "tests/test_cuda.py: exit $rc ($(tail -1 "$OUT/pytest_cuda.log"))"
[ $rc -eq 0 ] || STATUS=1
# (the t2 cases repeat the t1 ones: the CUDA backend ignores the thread count)
timeout 120 python3 -m pytest -q -rfE -p no:cacheprovider tests/test_backend_ops.py -k "cuda and not t2" \
    >"$OUT/pytest_ops.log" 2>&1
rc=$?
note "tests/test_backend_ops.py -k 'cuda and not t2': exit $rc ($(tail -1 "$OUT/pytest_ops.log"))"
[ $rc -eq 0 ] || STATUS=1

# ---- out-of-bounds accesses and races: small passes under compute-sanitizer (at most 90 s)
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$SAN" ] && [ "$(elapsed)" -lt 300 ]; then
    timeout 90 "$SAN" --tool memcheck --error-exitcode 9 python3 benchmarks/gpu_smoke.py >"$OUT/memcheck.log" 2>&1
    rc=$?
    note "compute-sanitizer memcheck of benchmarks/gpu_smoke.py: exit $rc (124: ran out of time; $(grep -c "Invalid" "$OUT/memcheck.log") invalid accesses)"
    [ $rc -eq 0 ] || [ $rc -eq 124 ] || STATUS=1
else
    note "memcheck skipped (no compute-sanitizer, or no time left)"
fi

# ---- benchmark against PyTorch eager on the same GPU (quick when less than 3 minutes remain of 8)
QUICK=""
[ "$(elapsed)" -gt 300 ] && QUICK="--quick"
LEFT=$((470 - $(elapsed)))
[ $LEFT -gt 30 ] || LEFT=30
# (its lines go straight to the file, so a run cut short still leaves what it measured)
timeout $LEFT python3 benchmarks/compare_gpu.py $QUICK >"$OUT/compare_gpu.txt" 2>"$OUT/compare_gpu.err"
rc=$?
note "benchmarks/compare_gpu.py $QUICK: exit $rc"
[ $rc -eq 0 ] || { STATUS=1; tail -20 "$OUT/compare_gpu.err" >>"$OUT/summary.txt"; }
grep -E "^(PASS|MISS)" "$OUT/compare_gpu.txt" 2>/dev/null | tee -a "$OUT/summary.txt"
rm -f "$OUT/compare_gpu.err"

# ---- where the GPU's time goes, op by op (appended to the benchmark's file), if time remains
LEFT=$((480 - $(elapsed)))
if [ $LEFT -gt 20 ]; then
    { echo; echo "# python -m ctrgcn profile (op by op, device synced around each op)"
      timeout $LEFT python3 -m ctrgcn profile --device cuda --variants CTRGCN CTRGCN_lightV2 --top 12
      timeout 20 python3 -m ctrgcn profile --device cuda --eval --shape ntu --top 8; } >>"$OUT/compare_gpu.txt" 2>&1
    note "op profile: exit $? (in compare_gpu.txt)"
fi
note "done: $([ $STATUS -eq 0 ] && echo ok || echo FAILURES)"
exit $STATUS
