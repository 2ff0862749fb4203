"""Sort-of-CLEVR VQA: every fusion head trained under the same wall-clock budget, in one run.

For each head (``concat``, ``relation``, ``film``, ``cross_attention``, ``co_attention``,
``transformer``), with text questions: train from scratch for ``--budget-seconds`` (the
epoch that crosses the budget finishes; the first ``--curriculum-epochs`` epochs, at most
half the budget, use the non-relational questions only, which gets attention over regions from scratch past its
slow start much sooner, see notebook 09), then record test accuracy per question type and
family, accuracy on the held-out paraphrase templates, wall time until validation
accuracy first reached 95% non-relational and 85% / 95% relational, peak GPU memory,
and training throughput (questions/s) in eager fp32, bf16, and bf16 + torch.compile.

    python benchmarks/vqa_sort_of_clevr.py                  # CPU: small sizes, minutes per head
    python benchmarks/vqa_sort_of_clevr.py --preset gpu     # GPU: the paper's sizes, bf16 + compile
    python benchmarks/vqa_sort_of_clevr.py --preset gpu --heads relation film   # some heads only

Writes benchmarks/results/vqa_sort_of_clevr-<device>.json (the format in ARCHITECTURE.md). A run
with ``--heads`` keeps the other heads' rows of an existing file made with the same
training config, so the heads can be trained in separate runs and the summary covers them all.
``best_head`` is the attention head (cross_attention, co_attention, transformer) with the
best relational test accuracy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mmtutorial.cli import ArgumentParser, int_at_least, positive_float, positive_int  # noqa: E402
from mmtutorial.data import SortOfClevr  # noqa: E402
from mmtutorial.data.sort_of_clevr import QUESTION_TYPES  # noqa: E402
from mmtutorial.models.vqa import ATTENTION_HEADS, HEADS, VQAConfig, VQAModel  # noqa: E402
from mmtutorial.models.vqa_training import (  # noqa: E402
    evaluate_vqa,
    seconds_to_accuracy,
    train_throughput,
    train_vqa,
)
from mmtutorial.outputs import prepare_output_folder  # noqa: E402
from mmtutorial.training import pick_device, seed_everything  # noqa: E402
from mmtutorial.training.benchmarking import device_label, results_path, write_results  # noqa: E402
from mmtutorial.training.distributed import DistributedContext  # noqa: E402

NAME = "vqa_sort_of_clevr"
NONREL, REL = QUESTION_TYPES[0], QUESTION_TYPES[1]

#: Sizes per preset. "gpu" is the paper's data (9,800 training images, 196k questions).
PRESETS = {
    "cpu": {
        "n_train": 3000,
        "n_val": 100,
        "n_test": 200,
        "dim": 64,
        "hidden": 64,
        "images_per_batch": 16,
        "lr": 1e-3,
        "budget_seconds": 240.0,
        "curriculum_epochs": 20,
        "max_epochs": 40,
        "precision": "fp32",
        "compile": False,
        "throughput_steps": 10,
    },
    "gpu": {
        "n_train": 9800,
        "n_val": 200,
        "n_test": 200,
        "dim": 128,
        "hidden": 256,
        "images_per_batch": 32,
        "lr": 1e-3,
        "budget_seconds": 150.0,
        "curriculum_epochs": 8,
        "max_epochs": 400,
        "precision": "bf16",
        "compile": True,
        "throughput_steps": 50,
    },
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--preset", choices=sorted(PRESETS), default=None, help="sizes; default: 'gpu' on a GPU, else 'cpu'"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--heads", nargs="+", choices=HEADS, default=list(HEADS))
    parser.add_argument("--question-encoder", choices=("gru", "transformer", "minilm", "structured"), default="gru")
    parser.add_argument(
        "--budget-seconds", type=positive_float, default=None, help="training wall-clock budget per head"
    )
    parser.add_argument(
        "--max-epochs", type=positive_int, default=None, help="epochs on all questions (after the curriculum)"
    )
    parser.add_argument(
        "--curriculum-epochs",
        type=int_at_least(0),
        default=None,
        help="epochs on non-relational questions first (0: none); they count in the budget",
    )
    parser.add_argument("--n-train", type=positive_int, default=None, help="training images (20 questions each)")
    parser.add_argument("--throughput-steps", type=positive_int, default=None)
    parser.add_argument("--no-throughput", action="store_true", help="skip the fp32/bf16/compile throughput rows")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace, device: torch.device) -> dict:
    preset = args.preset or ("gpu" if device.type == "cuda" else "cpu")
    config = {"preset": preset, **PRESETS[preset], "question_encoder": args.question_encoder, "seed": args.seed}
    for key in ("budget_seconds", "max_epochs", "curriculum_epochs", "n_train", "throughput_steps"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if config["precision"] == "bf16" and device.type == "cpu":
        config["precision"] = "fp32"  # bf16 autocast on CPU is slower than fp32
    return config


def load_splits(config: dict) -> dict[str, SortOfClevr]:
    tokenizer = "minilm" if config["question_encoder"] == "minilm" else "words"
    sizes = {k: config[k] for k in ("n_train", "n_val", "n_test")} | {"seed": config["seed"]}
    return {
        split: SortOfClevr(split, tokenizer=tokenizer, **sizes) for split in ("train", "val", "test", "test_heldout")
    }


def new_model(head: str, config: dict, train: SortOfClevr) -> VQAModel:
    vqa = VQAConfig(
        head=head,
        question_encoder=config["question_encoder"],
        num_answers=len(train.answers),
        vocab_size=len(train.tokenizer) if train.tokenizer is not None else None,
        pad_id=getattr(train, "pad_token_id", 0),
        dim=config["dim"],
        hidden=config["hidden"],
    )
    return VQAModel(vqa)


def train_head(head: str, config: dict, splits: dict, device: torch.device) -> dict:
    """Train one head under the budget; return its result row."""
    generator = seed_everything(config["seed"], deterministic=False)
    batches = {
        split: splits[split].batches(config["images_per_batch"], device=device, by_image=True)
        for split in ("test", "test_heldout")
    }
    model = new_model(head, config, splits["train"]).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    history = train_vqa(
        model,
        splits["train"],
        splits["val"],
        images_per_batch=config["images_per_batch"],
        epochs=config["max_epochs"],
        curriculum_epochs=config["curriculum_epochs"],
        lr=config["lr"],
        precision=config["precision"],
        compile=config["compile"],
        budget_seconds=config["budget_seconds"],
        generator=generator,
        context=DistributedContext(device=device),
        description=head,
    )
    test = evaluate_vqa(model, batches["test"], device=device, precision=config["precision"])
    heldout = evaluate_vqa(model, batches["test_heldout"], device=device, precision=config["precision"])
    return {
        "head": head,
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": len(history.epochs),
        "train_seconds": sum(row["seconds"] for row in history.epochs),
        "steps": len(history.epochs) * -(-len(splits["train"].images) // config["images_per_batch"]),
        "test_acc": test["acc"],
        "nonrelational_acc": test["acc_by_type"][NONREL],
        "relational_acc": test["acc_by_type"][REL],
        "acc_by_family": test["acc_by_family"],
        "heldout_acc": heldout["acc"],
        "heldout_acc_by_type": heldout["acc_by_type"],
        "seconds_to_95_nonrelational": seconds_to_accuracy(history, NONREL, 0.95),
        "seconds_to_85_relational": seconds_to_accuracy(history, REL, 0.85),
        "seconds_to_95_relational": seconds_to_accuracy(history, REL, 0.95),
        "peak_gpu_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "val_curve": [
            {
                "seconds": round(sum(r["seconds"] for r in history.epochs[: i + 1]), 2),
                "nonrelational": r["val_acc_by_group"][NONREL],
                "relational": r["val_acc_by_group"][REL],
            }
            for i, r in enumerate(history.epochs)
        ],
    }


def throughput_rows(head: str, config: dict, splits: dict, device: torch.device) -> dict:
    """Training questions/s of ``head`` in eager fp32, bf16, and bf16 + torch.compile."""
    modes = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16_compile": ("bf16", True)}
    row = {}
    for mode, (precision, compiled) in modes.items():
        seed_everything(config["seed"], deterministic=False)
        batches = splits["train"].batches(config["images_per_batch"], shuffle=True, device=device, by_image=True)
        model = new_model(head, config, splits["train"])
        measured = train_throughput(
            model,
            batches,
            device=device,
            precision=precision,
            compile=compiled,
            steps=config["throughput_steps"],
            lr=config["lr"],
        )
        row[f"train_samples_per_s_{mode}"] = measured["samples_per_s"]
        row[f"warmup_seconds_{mode}"] = measured["warmup_seconds"]
        torch._dynamo.reset()  # compiled graphs of one head do not leak into the next
    return row


def summarize(rows: list[dict]) -> dict:
    by_head = {row["head"]: row for row in rows}
    attention = [by_head[h] for h in ATTENTION_HEADS if h in by_head]
    best = max(attention, key=lambda r: (r["relational_acc"], r["nonrelational_acc"])) if attention else None

    def acc(head: str) -> float | None:
        return by_head[head]["relational_acc"] if head in by_head else None

    return {
        "best_head": best["head"] if best else None,
        "best_nonrelational_acc": best["nonrelational_acc"] if best else None,
        "best_relational_acc": best["relational_acc"] if best else None,
        "concat_relational_acc": acc("concat"),
        "relation_relational_acc": acc("relation"),
        "film_relational_acc": acc("film"),
        "paraphrase_heldout_acc": best["heldout_acc"] if best else None,
        "seconds_to_95_relational": best["seconds_to_95_relational"] if best else None,
        "train_samples_per_s_bf16_compile": best.get("train_samples_per_s_bf16_compile") if best else None,
    }


def previous_rows(path: Path, config: dict) -> list[dict]:
    """Rows of an earlier run with the same config (to combine heads trained separately)."""
    if not path.exists():
        return []
    payload = json.loads(path.read_text())

    def training(values: dict) -> dict:  # what decides accuracy; throughput steps do not
        return {k: v for k, v in values.items() if k != "throughput_steps"}

    return payload["results"] if training(payload.get("config", {})) == training(config) else []


def main(argv=None) -> int:
    args = parse_args(argv)
    try:  # before minutes of measuring: refuse an --out folder the benchmarks did not make
        device = pick_device(args.device)
        prepare_output_folder(args.out, "benchmarks")
    except ValueError as error:  # OutputFolderError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    config = build_config(args, device)
    started = time.perf_counter()
    splits = load_splits(config)
    print(f"{device_label(device)}: {config}", flush=True)
    rows = []
    for head in args.heads:
        row = train_head(head, config, splits, device)
        if not args.no_throughput:
            row.update(throughput_rows(head, config, splits, device))
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k not in ("val_curve", "acc_by_family")}), flush=True)
    kept = [r for r in previous_rows(results_path(NAME, device, args.out), config) if r["head"] not in args.heads]
    rows = sorted(kept + rows, key=lambda r: HEADS.index(r["head"]))
    summary = summarize(rows)
    path = write_results(NAME, device, config, rows, summary, folder=args.out)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path} in {time.perf_counter() - started:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
