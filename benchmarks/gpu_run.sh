#!/usr/bin/env bash
# Every GPU measurement of the course in one call, for a lent H100/H200 machine that has
# PyTorch but no Jupyter: run from the repository root with PYTHONPATH=$PWD. Each step runs
# under its own timeout, so the call always ends and leaves its JSON and logs under $OUT
# (then commit benchmarks/results/*.json with the device named, as the scripts write it).
#
#   OUT=/path/to/out bash benchmarks/gpu_run.sh        # about 9 minutes on one H200
#
# The step timeouts add up to 595 s, under the 600 s a lent machine gives one command.
set -u
OUT=${OUT:-build/gpu-run}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv > "$OUT/gpu.txt" 2>&1

# 1. The VQA benchmark: 6 heads x 3 seeds trained at once on the one GPU (each run under
#    its own timeout, training stopped at 300 s), then the best head's throughput alone (fp32, bf16,
#    bf16+compile, the fastest configuration) with a profile.
timeout 470 python benchmarks/vqa_sort_of_clevr.py --preset gpu --jobs 18 --budget-seconds 300 --run-timeout 400 \
    --out "$OUT/results" > "$OUT/vqa_sort_of_clevr.log" 2>&1
echo "vqa_sort_of_clevr exit $?" >> "$OUT/status.txt"

# 2. Attention's cost on the GPU: bf16, flash/efficient SDPA, FlexAttention, TFLOP/s.
timeout 75 python benchmarks/attention_scaling.py --device cuda --out "$OUT/results-attention" \
    > "$OUT/attention_scaling.log" 2>&1
echo "attention_scaling exit $?" >> "$OUT/status.txt"

# 3. Data-parallel training on NCCL with SyncBatchNorm (one node, every GPU it has).
timeout 50 python -m torch.distributed.run --standalone --nproc_per_node "$(nvidia-smi -L | wc -l)" \
    -m mmtutorial.models.train_vqa --n-train 400 --n-val 50 --n-test 50 --epochs 2 --curriculum-epochs 1 \
    --images-per-batch 32 --no-progress --checkpoint "$OUT/nccl.pt" > "$OUT/nccl.log" 2>&1
echo "nccl exit $?" >> "$OUT/status.txt"
cat "$OUT/status.txt"
