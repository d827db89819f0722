#!/usr/bin/env bash
# The GPU checks, in one script for a lent GPU machine: a fresh machine with this repository
# checked out and no virtualenv.
#
#   bench/gpu.sh
#
# 1. a virtualenv: $CNNVIS_VENV if it names one (reused), else a new one in a temp dir; then
#    pip install -e ".[test]" (created with --system-site-packages, so a CUDA torch already on
#    the machine is used; offline, the install falls back to --no-build-isolation --no-deps);
# 2. the GPU's name;
# 3. the whole test suite: the `device` fixture (tests/conftest.py) adds a cuda variant of every
#    device-aware test where torch sees a GPU, so the plain suite checks the GPU path;
# 4. python bench/dream_overhead.py --device cuda, and bench/speed.py's roofline on the GPU
#    (fp32, bf16, fp16, channels-last, compile);
# 5. python bench/batch_channels.py --device cuda, if that script exists.
#
# Each step's output goes to its own log in $CNNVIS_LOG_DIR (default: a new temp dir); a failed
# step is reported and the next one runs. Prints a summary at the end; exits 1 if any step failed.
# Optional: CNNVIS_STEP_TIMEOUT (seconds per step, via timeout(1)); PYTEST_ARGS (extra pytest
# arguments, e.g. "-x").
set -euo pipefail
cd "$(dirname "$0")/.."

LOG_DIR="${CNNVIS_LOG_DIR:-$(mktemp -d -t cnnvis-gpu-logs.XXXXXX)}"
mkdir -p "$LOG_DIR"
STEP_TIMEOUT="${CNNVIS_STEP_TIMEOUT:-}"
PYTEST_ARGS="${PYTEST_ARGS:-}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-4}"

declare -a SUMMARY=()
FAILED=()

# step NAME COMMAND...: run COMMAND with its output in $LOG_DIR/NAME.log; never stops the script.
step() {
    local name="$1"
    shift
    local log="$LOG_DIR/$name.log"
    local t0 rc=0
    t0=$(date +%s)
    echo "== $name: $*"
    if [ -n "$STEP_TIMEOUT" ] && ! declare -F "$1" >/dev/null; then  # timeout(1) runs programs, not functions
        timeout "$STEP_TIMEOUT" "$@" >"$log" 2>&1 || rc=$?
    else
        "$@" >"$log" 2>&1 || rc=$?
    fi
    local secs=$(($(date +%s) - t0))
    if [ "$rc" -eq 0 ]; then
        SUMMARY+=("ok      $name (${secs} s)  $log")
    else
        [ "$rc" -eq 124 ] && echo "   (timed out after ${STEP_TIMEOUT} s)" >>"$log"
        SUMMARY+=("FAILED  $name (exit $rc, ${secs} s)  $log")
        FAILED+=("$name")
    fi
    tail -n 15 "$log" | sed 's/^/   | /'
    return 0
}

# ---------------------------------------------------------------- 1. virtualenv
setup_venv() {
    local py="${PYTHON:-python3}"
    if [ -n "${CNNVIS_VENV:-}" ] && [ -x "$CNNVIS_VENV/bin/python" ]; then
        VENV="$CNNVIS_VENV"
        echo "reusing the virtualenv $VENV"
    else
        VENV="${CNNVIS_VENV:-$(mktemp -d -t cnnvis-venv.XXXXXX)}"
        "$py" -m venv --system-site-packages "$VENV"
        echo "created the virtualenv $VENV"
    fi
    if ! "$VENV/bin/python" -m pip install -q -e ".[test]"; then
        echo "pip install -e .[test] failed (offline?); trying the packages already on the machine"
        "$VENV/bin/python" -m pip install -q --no-build-isolation --no-deps -e . || true
    fi
    "$VENV/bin/python" -c "import cnnvis, torch, pytest; print('cnnvis', cnnvis.__file__); print('torch', torch.__version__, 'cuda', torch.version.cuda)"
}
VENV=""
step setup setup_venv
if [ -z "$VENV" ] || [ ! -x "$VENV/bin/python" ]; then
    echo "no usable virtualenv; the remaining steps use $(command -v python3)"
    PY="$(command -v python3)"
else
    PY="$VENV/bin/python"
fi

# ---------------------------------------------------------------- 2. the GPU
gpu_name() {
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    fi
    "$PY" -c "
import torch
assert torch.cuda.is_available(), 'torch sees no CUDA GPU: the cuda test variants will not run'
for i in range(torch.cuda.device_count()):
    print(f'cuda:{i}', torch.cuda.get_device_name(i))
"
}
step gpu gpu_name
echo "GPU: $(grep -m1 '^cuda:0' "$LOG_DIR/gpu.log" || echo "none that torch can use (see $LOG_DIR/gpu.log)")"

# ---------------------------------------------------------------- 3. the test suite (cpu and cuda variants)
# shellcheck disable=SC2086  # PYTEST_ARGS: words on purpose
step pytest "$PY" -m pytest -q -ra --junitxml="$LOG_DIR/pytest.xml" $PYTEST_ARGS

# ---------------------------------------------------------------- 4-5. benchmarks on cuda
step dream_overhead "$PY" bench/dream_overhead.py --device cuda
step speed "$PY" bench/speed.py --device cuda --compile --side 2048
if [ -f bench/batch_channels.py ]; then
    step batch_channels "$PY" bench/batch_channels.py --device cuda
else
    SUMMARY+=("skipped batch_channels (bench/batch_channels.py does not exist)")
fi

# ---------------------------------------------------------------- summary
echo
echo "== summary (logs in $LOG_DIR)"
printf '%s\n' "${SUMMARY[@]}"
if [ -f "$LOG_DIR/pytest.log" ]; then
    echo "pytest: $(tail -n 1 "$LOG_DIR/pytest.log")"
fi
if [ -f "$LOG_DIR/pytest.xml" ]; then
    # The cuda variants of the device-aware tests (ids [cuda], [cuda-...], [...-cuda-...]).
    "$PY" - "$LOG_DIR/pytest.xml" <<'PYEOF' || true
import re
import sys
import xml.etree.ElementTree as ET

counts = {"passed": 0, "failed": 0, "skipped": 0}
failed = []
for case in ET.parse(sys.argv[1]).iter("testcase"):
    if not re.search(r"[\[-]cuda[\]-]", case.get("name", "")):
        continue
    kinds = {child.tag for child in case}
    kind = "failed" if kinds & {"failure", "error"} else "skipped" if "skipped" in kinds else "passed"
    counts[kind] += 1
    if kind == "failed":
        failed.append(f"{case.get('classname')}::{case.get('name')}")
print("cuda variants: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
if sum(counts.values()) == 0:
    print("  none ran: torch saw no CUDA GPU")
for name in failed:
    print("  FAILED", name)
PYEOF
fi
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo "failed steps: ${FAILED[*]}"
    exit 1
fi
echo "all steps passed"
