#!/usr/bin/env bash
# Every GPU measurement of the course in one call, for a lent H100/H200 machine that has
# PyTorch but no Jupyter: run from the repository root with PYTHONPATH=$PWD. Each step runs
# under its own timeout, so the call always ends and leaves its JSON and logs under $OUT
# (then commit benchmarks/results/*.json with the device named, as the scripts write it).
#
#   OUT=/path/to/out bash benchmarks/gpu_run.sh        # about 9.5 minutes on one H200
#
# The step timeouts add up to 575 s, under the 600 s a lent machine gives one command
# (VQA_BUDGET=330 SKIP_ATTENTION=1: 570 s).
# What comes back: $OUT/status.txt, the two results files and one archive of the logs.
#
# First, in the same lease (a machine stays warm 30 s after a call): PROBE=1 trains the 18 runs
# for one curriculum epoch and one on all questions (about 1.5 minutes) and prints each run's
# seconds per epoch while all share the GPU, and the slowest run's time for its preset epochs
# (each head's curriculum and all-question epochs, from these two): up to 240 s, run this as it is; up to 320 s, with VQA_BUDGET=330
# SKIP_ATTENTION=1; beyond, also with VQA_ARGS="--heads cross_attention film relation" (9
# runs, so each gets more of the GPU) and say which heads are still owed.
set -u
OUT=${OUT:-build/gpu-run}
mkdir -p "$OUT/logs"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/logs/gpu.txt" 2>&1
if [ -n "${PROBE:-}" ]; then
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 3 > "$OUT/probe-load.csv" 2>&1 &
    LOAD=$!
    timeout 110 python3 benchmarks/vqa_sort_of_clevr.py --preset gpu --jobs 18 --epochs 1 --curriculum-epochs 1 \
        --throughput none --run-timeout 100 --out "$OUT/probe" > "$OUT/probe.log" 2>&1
    echo "probe exit $?"
    kill $LOAD 2>/dev/null
    cp "$OUT"/probe/*.json "$OUT"/ 2>/dev/null
    python3 - "$OUT"/probe/*.json <<'PY'
import json, sys
sys.path.insert(0, "benchmarks")
from vqa_sort_of_clevr import PRESETS, per_head  # each head's epochs under the GPU preset

preset = PRESETS["gpu"]
estimates = []  # each finished run: its curriculum epochs x its first epoch + the others x its second
for r in json.load(open(sys.argv[1]))["results"]:
    seconds = [c["seconds"] for c in r.get("val_curve", [])]  # cumulative
    epochs = [b - a for a, b in zip([0] + seconds, seconds)]
    print(r["head"], r["seed"], r.get("error", ""), "epoch seconds:", [round(e, 1) for e in epochs])
    if len(epochs) == 2:
        c, e = per_head(r["head"], preset, "head_curriculum_epochs"), per_head(r["head"], preset, "head_epochs")
        estimates.append((c * epochs[0] + e * epochs[1], r["head"], c, e))
if estimates:
    total, head, c, e = max(estimates)
    print(f"slowest run: {head}, {c} + {e} epochs in about {total:.0f} s")
else:
    print("no run finished")
PY
    exit 0
fi
# the GPU's load every 5 s while the 18 runs share it (how far they fill it)
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 > "$OUT/logs/gpu-load.csv" 2>&1 &
LOAD=$!

# 1. The VQA benchmark: 6 heads x 3 seeds trained at once on the one GPU, each in its own
#    process under its own timeout, training stopped after the epoch that passes the budget
#    (a run the budget cuts says so: its "epochs" is under curriculum + epochs).
#    VQA_BUDGET (default 250) moves the budget and the timeouts with it; VQA_ARGS adds flags.
BUDGET=${VQA_BUDGET:-250}
timeout $((BUDGET + 75)) python3 benchmarks/vqa_sort_of_clevr.py --preset gpu --jobs 18 --budget-seconds "$BUDGET" \
    --run-timeout $((BUDGET + 55)) --throughput none ${VQA_ARGS:-} --out "$OUT/results" \
    > "$OUT/logs/vqa_sort_of_clevr.log" 2>&1 &
VQA=$!
# 2. Meanwhile, data-parallel training on NCCL with SyncBatchNorm (one node, every GPU it
#    has): a check that it runs, not a measurement, so it may share the GPU.
timeout 90 python3 -m torch.distributed.run --standalone --nproc_per_node "$(nvidia-smi -L | wc -l)" \
    -m mmtutorial.models.train_vqa --n-train 400 --n-val 50 --n-test 50 --epochs 2 --curriculum-epochs 1 \
    --images-per-batch 32 --no-progress --checkpoint "$OUT/logs/nccl.pt" > "$OUT/logs/nccl.log" 2>&1
echo "nccl exit $?" >> "$OUT/status.txt"
wait $VQA
echo "vqa_sort_of_clevr exit $?" >> "$OUT/status.txt"
kill $LOAD 2>/dev/null

# 3. Alone: the best head's training throughput (fp32 with a profile, bf16, bf16 + compile,
#    and 256 images a batch in bf16 with CUDA graphs and channels-last), added to the file.
timeout 165 python3 benchmarks/vqa_sort_of_clevr.py --preset gpu --throughput-only --out "$OUT/results" \
    > "$OUT/logs/throughput.log" 2>&1
echo "throughput exit $?" >> "$OUT/status.txt"

# 4. Alone: attention's cost on the GPU: bf16, flash/efficient SDPA, FlexAttention, TFLOP/s
#    (SKIP_ATTENTION=1 leaves it out, for a longer VQA budget in the same 600 s).
if [ -z "${SKIP_ATTENTION:-}" ]; then
    timeout 85 python3 benchmarks/attention_scaling.py --device cuda --out "$OUT/results-attention" \
        > "$OUT/logs/attention_scaling.log" 2>&1
    echo "attention_scaling exit $?" >> "$OUT/status.txt"
fi

rm -f "$OUT/logs/nccl.pt"
cp "$OUT"/results/*.json "$OUT"/results-attention/*.json "$OUT"/ 2>/dev/null
tar czf "$OUT/logs.tgz" -C "$OUT" logs && rm -rf "$OUT/logs" "$OUT/results" "$OUT/results-attention"
ls "$OUT" >> "$OUT/status.txt"
cat "$OUT/status.txt"
