#!/usr/bin/env bash
# GPU check for a lent GPU machine: the paper's AlexNet at 227/224 px with AMP
# and channels_last (images/s, TFLOP/s), Section 3.2's two-device split (on
# cuda:0+cuda:1, or cuda:0+cuda:0 with one GPU), and a few steps of the paper
# profile's recipe on generated images. Runs in under 5 minutes: each part is a
# separate process under its own timeout, a failing part is reported and the
# others still run, and a summary is always printed.
#
#   bash benchmarks/gpu_check.sh                  # on the GPU machine, from anywhere
#   GPU_CHECK_DEVICE=cpu bash benchmarks/gpu_check.sh   # toy sizes on the CPU: checks the script only
#
# Settings: PYTHON (default .venv/bin/python, else python3), GPU_CHECK_PART_TIMEOUT
# (seconds per part, default 80), GPU_CHECK_BATCH (default 128), GPU_CHECK_STEPS (default 10).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -n "${PYTHON:-}" ]]; then
  py="$PYTHON"
elif [[ -x .venv/bin/python ]]; then
  py=.venv/bin/python
else
  py=python3
fi
device="${GPU_CHECK_DEVICE:-cuda}"
part_timeout="${GPU_CHECK_PART_TIMEOUT:-80}"
batch="${GPU_CHECK_BATCH:-128}"
steps="${GPU_CHECK_STEPS:-10}"
extra=()
[[ "$device" == cpu ]] && extra+=(--small)
summary="$(mktemp -t gpu_check.XXXXXX.jsonl)"
trap 'rm -f "$summary"' EXIT
started=$SECONDS
statuses=()

echo "gpu_check: $(date -u +%Y-%m-%dT%H:%M:%SZ), device=$device, python=$py, ${part_timeout}s per part"
if command -v nvidia-smi >/dev/null 2>&1; then
  timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || true
else
  echo "gpu_check: no nvidia-smi on PATH"
fi

run_part() {
  local name="$1"; shift
  local rc=0
  echo
  echo "=== $name ==="
  timeout --kill-after=10 "$part_timeout" "$py" benchmarks/gpu_check.py --part "$name" --device "$device" \
    --batch "$batch" --steps "$steps" --summary "$summary" ${extra[@]+"${extra[@]}"} "$@" || rc=$?
  case "$rc" in
    0) statuses+=("$name: ok") ;;
    124|137) statuses+=("$name: TIMED OUT after ${part_timeout}s") ;;
    3) statuses+=("$name: skipped (no CUDA device)") ;;
    *) statuses+=("$name: FAILED (exit $rc)") ;;
  esac
}

run_part throughput
run_part split
run_part profile

echo
echo "=== summary ($((SECONDS - started)) s) ==="
for status in "${statuses[@]}"; do echo "  $status"; done
if [[ -s "$summary" ]]; then
  "$py" - "$summary" <<'PY' || cat "$summary"
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
for r in rows:
    if r["part"] == "throughput":
        print(f"  paper AlexNet {r['size']} px  {r['mode']:<9} {r['precision']:<10} batch {r['batch']:>4}: "
              f"{r['images_per_s']:>9.1f} images/s  {r['tflops']:6.2f} TFLOP/s")
    elif r["part"] == "split" and "equal" in r:
        print(f"  two-device split on {r['devices']}: same outputs/gradients as grouped: {r['equal']} "
              f"(max logit diff {r['max_logit_diff']:.2e}, conv1 grad rel diff {r['conv1_grad_rel_diff']:.2e})")
    elif r["part"] == "split":
        print(f"  {r['model']:<17} on {r['devices']}  {r['mode']} batch {r['batch']}: {r['images_per_s']:.1f} images/s")
    elif r["part"] == "profile":
        print(f"  paper profile, {r['recipe']}, {r['precision']}: {r['steps']} steps, "
              f"{r['images_per_s']:.1f} images/s, loss {r['train_loss']:.3f}, finite: {r['finite']}")
PY
else
  echo "  (no results)"
fi
failed=0
for status in "${statuses[@]}"; do [[ "$status" == *": ok" ]] || failed=1; done
exit "$failed"
