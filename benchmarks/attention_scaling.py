"""How attention's cost grows with sequence length, five ways, side by side in one run.

Methods (batch x heads x length x head_dim, self-attention, forward):

* ``scratch``             mmtutorial's from-scratch scaled dot-product attention (full L x L)
* ``sdpa``                torch.nn.functional.scaled_dot_product_attention, no mask
* ``dense_masked_window`` SDPA with a dense (L x L) sliding-window mask
* ``blocked_window``      mmtutorial's blocked local attention (about 3wL scores)
* ``flex_window``         compiled FlexAttention with a sliding-window block mask

On a GPU the script also times SDPA's flash and memory-efficient backends, in bf16,
and reports achieved TFLOP/s next to the GPU's bf16 peak.

    python benchmarks/attention_scaling.py                 # CPU: float32, lengths 256..16k
    python benchmarks/attention_scaling.py --device cuda   # GPU: bf16

Writes benchmarks/results/attention_scaling-<device>.json (the format in ARCHITECTURE.md). A method
is skipped at longer lengths once one call takes more than --max-call-seconds or its
L x L tensors would exceed --max-dense-gb, so the CPU run finishes in minutes.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mmtutorial.attention import (  # noqa: E402
    SlidingWindow,
    blocked_local_attention,
    flex_sparse_attention,
    scaled_dot_product_attention,
)
from mmtutorial.cli import ArgumentParser, int_at_least, positive_float, positive_int  # noqa: E402
from mmtutorial.outputs import prepare_output_folder  # noqa: E402
from mmtutorial.training import pick_device  # noqa: E402
from mmtutorial.training.benchmarking import (
    best_time,
    device_label,
    loglog_slope,
    peak_memory,
    write_results,
)

# Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets.
BF16_PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L4": 121.0}


def peak_tflops(label: str) -> float | None:
    return next((peak for key, peak in BF16_PEAK_TFLOPS.items() if key in label), None)


def attention_flops(batch: int, heads: int, length: int, dim: int, keys_per_query: float) -> float:
    """Multiply-adds of QK^T and PV, counted as 2 FLOPs each: 4 * B * H * L * keys * d."""
    return 4.0 * batch * heads * length * keys_per_query * dim


def methods(device: torch.device, window: int):
    """name -> (function of q, k, v and a precomputed mask, keys per query(L), materializes L x L)."""
    pattern = SlidingWindow(window)
    table = {
        "scratch": (lambda q, k, v, m: scaled_dot_product_attention(q, k, v)[0], lambda n: n, True),
        "sdpa": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v), lambda n: n, False),
        "dense_masked_window": (
            lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
            lambda n: min(n, 2 * window + 1),
            True,
        ),
        "blocked_window": (
            lambda q, k, v, m: blocked_local_attention(q, k, v, window),
            lambda n: min(n, 2 * window + 1),
            False,
        ),
        "flex_window": (
            lambda q, k, v, m: flex_sparse_attention(q, k, v, pattern),
            lambda n: min(n, 2 * window + 1),
            False,
        ),
    }
    if device.type == "cuda":
        from torch.nn.attention import SDPBackend, sdpa_kernel

        def with_backend(backend):
            def run(q, k, v, m):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v)

            return run

        table["sdpa_flash"] = (with_backend(SDPBackend.FLASH_ATTENTION), lambda n: n, False)
        table["sdpa_efficient"] = (with_backend(SDPBackend.EFFICIENT_ATTENTION), lambda n: n, False)
    return table


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--lengths", type=positive_int, nargs="+", default=[256, 512, 1024, 2048, 4096, 8192, 16384])
    parser.add_argument("--window", type=int_at_least(0), default=128)
    parser.add_argument("--batch", type=positive_int, default=1)
    parser.add_argument("--heads", type=positive_int, default=4)
    parser.add_argument("--head-dim", type=positive_int, default=64)
    parser.add_argument("--repeats", type=positive_int, default=5)
    parser.add_argument("--max-call-seconds", type=positive_float, default=8.0)
    parser.add_argument("--max-dense-gb", type=positive_float, default=6.0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    try:  # before minutes of measuring: refuse an --out folder the benchmarks did not make
        device = pick_device(args.device)
        prepare_output_folder(args.out, "benchmarks")
    except ValueError as error:  # OutputFolderError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    label = device_label(device)
    table = methods(device, args.window)
    skipped: dict[str, str] = {}
    results = []
    started = time.perf_counter()
    print(f"device {label}, dtype {dtype}, B={args.batch} H={args.heads} d={args.head_dim} window={args.window}")

    def inputs(length):
        generator = torch.Generator(device="cpu").manual_seed(length)
        q, k, v = (
            torch.randn(args.batch, args.heads, length, args.head_dim, generator=generator).to(device, dtype)
            for _ in range(3)
        )
        return q, k, v, SlidingWindow(args.window).dense_mask(length, device=device)

    # Phase 1: time everything with the normal allocator.
    for length in args.lengths:
        q, k, v, mask = inputs(length)
        for name, (fn, keys_per_query, materializes) in table.items():
            if name in skipped:
                continue
            dense_gb = 2 * args.batch * args.heads * length**2 * q.element_size() / 1e9
            if materializes and dense_gb > args.max_dense_gb:
                skipped[name] = f"from L={length}: its L x L tensors need about {dense_gb:.0f} GB"
                continue
            try:
                with torch.inference_mode():
                    fn(q, k, v, mask)  # warm-up; compiles FlexAttention for this shape
                    seconds = best_time(partial(fn, q, k, v, mask), repeats=args.repeats, warmup=1, device=device)
            except (RuntimeError, MemoryError) as error:  # out of memory, unsupported backend ...
                skipped[name] = f"from L={length}: {type(error).__name__}: {str(error).splitlines()[0][:120]}"
                continue
            flops = attention_flops(args.batch, args.heads, length, args.head_dim, keys_per_query(length))
            results.append({"method": name, "length": length, "seconds": seconds, "tflops": flops / seconds / 1e12})
            print(
                f"  L={length:>6} {name:<20} {1e3 * seconds:10.2f} ms  {flops / seconds / 1e12:.3f} TFLOP/s", flush=True
            )
            if seconds > args.max_call_seconds:
                skipped[name] = f"after L={length}: one call took {seconds:.1f} s"

    # Phase 2: peak memory of one call each.
    for length in args.lengths:
        rows = [r for r in results if r["length"] == length]
        if not rows:
            continue
        q, k, v, mask = inputs(length)
        with torch.inference_mode():
            for row in rows:
                fn = table[row["method"]][0]
                row["peak_bytes"] = peak_memory(partial(fn, q, k, v, mask), device=device)
                print(f"  L={length:>6} {row['method']:<20} {row['peak_bytes'] / 2**20:10.1f} MiB peak", flush=True)

    def seconds(method, length):
        return next((r["seconds"] for r in results if r["method"] == method and r["length"] == length), None)

    def ratio(a, b, length):
        ta, tb = seconds(a, length), seconds(b, length)
        return None if ta is None or tb is None else ta / tb

    blocked = [
        (r["length"], r["peak_bytes"]) for r in results if r["method"] == "blocked_window" and r["length"] >= 1024
    ]
    summary = {
        "flex_window_speedup_vs_dense_masked_n4096": ratio("dense_masked_window", "flex_window", 4096),
        "blocked_window_speedup_vs_dense_masked_n4096": ratio("dense_masked_window", "blocked_window", 4096),
        "scratch_over_sdpa_n1024": ratio("scratch", "sdpa", 1024),
        "window_memory_loglog_slope": loglog_slope(*zip(*blocked, strict=True)) if len(blocked) >= 2 else None,
        "dense_sdpa_time_loglog_slope": loglog_slope(
            *zip(
                *[(r["length"], r["seconds"]) for r in results if r["method"] == "scratch" and r["length"] >= 1024],
                strict=True,
            )
        )
        if sum(r["method"] == "scratch" and r["length"] >= 1024 for r in results) >= 2
        else None,
    }
    if device.type == "cuda":
        best = max((r for r in results if r["method"].startswith("sdpa")), key=lambda r: r["tflops"], default=None)
        summary["best_sdpa_tflops"] = best["tflops"] if best else None
        summary["bf16_peak_tflops"] = peak_tflops(label)
    config = {
        "dtype": str(dtype).replace("torch.", ""),
        "batch": args.batch,
        "heads": args.heads,
        "head_dim": args.head_dim,
        "window": args.window,
        "lengths": args.lengths,
        "repeats": args.repeats,
        "threads": torch.get_num_threads(),
        "memory": "peak allocator bytes (GPU) or sampled resident memory above the level before the call (CPU)",
        "window_memory_slope_lengths": [length for length, _ in blocked],
        "skipped": skipped,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    path = write_results("attention_scaling", device, config, results, summary, folder=args.out)
    print("summary:", {k: (round(v, 3) if isinstance(v, float) else v) for k, v in summary.items()})
    print("skipped:", skipped)
    print(f"wrote {path}")
    return 0 if all(v is not None for k, v in summary.items() if not k.startswith(("best_", "bf16_"))) else 1


if __name__ == "__main__":
    sys.exit(main())
