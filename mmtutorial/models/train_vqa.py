"""Train one VQA model on Sort-of-CLEVR from the command line, in one process or
data-parallel under ``torchrun``, and save a checkpoint (config, weights, answers, metrics).

    python -m mmtutorial.models.train_vqa --head cross_attention --checkpoint runs/vqa.pt
    torchrun --standalone --nproc_per_node 2 -m mmtutorial.models.train_vqa --checkpoint runs/vqa.pt
    torchrun --nnodes 2 --nproc_per_node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29500 \\
        -m mmtutorial.models.train_vqa --checkpoint runs/vqa.pt

The settings of notebook 09's run (the distance hop learned on 9 of 10 seeds on one CPU)::

    python -m mmtutorial.models.train_vqa --n-train 9000 --n-val 200 --curriculum-epochs 10 \\
        --epochs 10 --lr 2e-3 --ema-decay 0.995 --distance-bias-scale 4 --distance-positions learned \\
        --distance-bias-exclude 8 --hold-distance-bias --relational-first-hop-delay 1 --checkpoint runs/vqa.pt

``--images-per-batch`` is the *global* batch: with N processes each takes 1/N of its
images (with their questions). Rank 0 evaluates, prints the metrics as JSON and writes the
checkpoint, which loads in a single process with ``load_vqa_checkpoint``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from ..cli import ArgumentParser, fail, int_at_least, nonnegative_float, open_unit_float, positive_float, positive_int
from ..data import SortOfClevr
from ..training import seed_everything
from ..training.distributed import cleanup, exit_process, init_distributed
from .vqa import HEADS, QUESTION_ENCODERS, RELATE_HOPS, VQAConfig, VQAModel, save_vqa_checkpoint
from .vqa_heads import AVOID_MODES, POSITION_MODES
from .vqa_training import evaluate_vqa, train_vqa

__all__ = ["main"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = ArgumentParser(prog="python -m mmtutorial.models.train_vqa", description=__doc__.split("\n\n")[0])
    parser.add_argument("--head", choices=HEADS, default="cross_attention")
    parser.add_argument("--question-encoder", choices=QUESTION_ENCODERS, default="gru")
    parser.add_argument("--cnn-norm", choices=("batch", "group"), default="batch")
    parser.add_argument("--dim", type=positive_int, default=64)
    parser.add_argument("--hidden", type=positive_int, default=64)
    parser.add_argument("--n-train", type=positive_int, default=3000, help="training images (20 questions each)")
    parser.add_argument("--n-val", type=positive_int, default=100)
    parser.add_argument("--n-test", type=positive_int, default=200)
    parser.add_argument("--images-per-batch", type=positive_int, default=16, help="global batch, in images")
    parser.add_argument("--epochs", type=positive_int, default=16, help="epochs on all questions")
    parser.add_argument("--curriculum-epochs", type=int_at_least(0), default=20, help="non-relational epochs first")
    parser.add_argument(
        "--curriculum-until",
        type=open_unit_float,
        default=None,
        help="then stay on non-relational questions until validation non-relational accuracy reaches this, "
        "taking the extra epochs from --epochs",
    )
    parser.add_argument(
        "--max-curriculum-epochs",
        type=positive_int,
        default=None,
        help="the longest --curriculum-until may make the curriculum (default: curriculum epochs + epochs // 2)",
    )
    # cross-attention's distance-biased second hop (notebook 09, section 4)
    parser.add_argument("--distance-bias-scale", type=positive_float, default=1.0, help="multiplies w and u")
    parser.add_argument(
        "--distance-positions", choices=POSITION_MODES, default="centres", help="where distances are measured from"
    )
    parser.add_argument(
        "--distance-bias-exclude",
        type=nonnegative_float,
        default=None,
        help="keep hop 2 off hop 1's object: u <= -this",
    )
    parser.add_argument(
        "--relate-hop",
        choices=RELATE_HOPS,
        default="last",
        help="whose read-out cross_attention relates to every region: hop 1's, the last hop's, or all",
    )
    parser.add_argument(
        "--distance-bias-avoid",
        choices=AVOID_MODES,
        default="weights",
        help="what u multiplies: hop 1's weights, those over their peak, or a kernel around the found position",
    )
    parser.add_argument(
        "--hold-distance-bias", action="store_true", help="hold w and u during the curriculum (cross_attention)"
    )
    parser.add_argument(
        "--relational-first-hop-delay",
        type=int_at_least(0),
        default=0,
        help="epochs after the curriculum in which relational questions do not train hop 1 (cross_attention)",
    )
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="peak learning rate")
    parser.add_argument(
        "--head-lr",
        type=positive_float,
        default=None,
        help="the fusion head's own peak learning rate, the encoders keeping --lr (default: --lr); "
        "--head transformer: 5e-4 with --lr 2e-3, the benchmark's setting",
    )
    parser.add_argument("--weight-decay", type=nonnegative_float, default=0.0)
    parser.add_argument("--schedule", choices=("warmup_cosine", "constant"), default="warmup_cosine")
    parser.add_argument("--warmup-fraction", type=positive_float, default=0.1, help="of all steps")
    parser.add_argument("--clip-grad-norm", type=positive_float, default=None)
    parser.add_argument(
        "--translate", action="store_true", help="shift training images at random (left/top answers recomputed)"
    )
    parser.add_argument(
        "--no-recalibrate-bn", action="store_true", help="evaluate with BatchNorm's running statistics as they are"
    )
    parser.add_argument("--keep-last", action="store_true", help="keep the last epoch's weights, not the best")
    parser.add_argument(
        "--ema-decay",
        type=open_unit_float,
        default=None,
        help="validate and keep a moving average of the weights, with this decay per step (e.g. 0.995)",
    )
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--budget-seconds", type=positive_float, default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int_at_least(0), default=0)
    parser.add_argument("--deterministic", action="store_true", help="deterministic algorithms (slower)")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--checkpoint", required=True, help="where rank 0 saves the trained model")
    args = parser.parse_args(argv)
    if Path(args.checkpoint).is_dir():
        parser.error(f"argument --checkpoint: {args.checkpoint} is a folder, expected a file path such as runs/vqa.pt")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return _train(args)
    except (ValueError, FileNotFoundError) as error:  # a bad value the argument types cannot see
        fail(str(error))


def _train(args: argparse.Namespace) -> int:
    context = init_distributed(args.device)
    try:
        generator = seed_everything(args.seed, deterministic=args.deterministic)
        tokenizer = "minilm" if args.question_encoder == "minilm" else "words"
        # the data stay fixed (data_seed 0): --seed changes the initialisation and the shuffling
        sizes = {"n_train": args.n_train, "n_val": args.n_val, "n_test": args.n_test}
        train, val, test = (SortOfClevr(split, tokenizer=tokenizer, **sizes) for split in ("train", "val", "test"))
        config = VQAConfig(
            head=args.head,
            question_encoder=args.question_encoder,
            num_answers=len(train.answers),
            vocab_size=len(train.tokenizer) if tokenizer == "words" else None,
            pad_id=train.pad_token_id,
            cnn_norm=args.cnn_norm,
            dim=args.dim,
            hidden=args.hidden,
            distance_bias_scale=args.distance_bias_scale,
            distance_positions=args.distance_positions,
            distance_bias_avoid=args.distance_bias_avoid,
            relate_hop=args.relate_hop,
            distance_bias_exclude=args.distance_bias_exclude,
        )
        model = VQAModel(config)
        started = time.perf_counter()
        history = train_vqa(
            model,
            train,
            val,
            images_per_batch=args.images_per_batch,
            epochs=args.epochs,
            curriculum_epochs=args.curriculum_epochs,
            curriculum_until=args.curriculum_until,
            max_curriculum_epochs=args.max_curriculum_epochs,
            lr=args.lr,
            head_lr=args.head_lr,
            weight_decay=args.weight_decay,
            schedule=args.schedule,
            warmup_fraction=args.warmup_fraction,
            clip_grad_norm=args.clip_grad_norm,
            translate=args.translate,
            recalibrate_bn=not args.no_recalibrate_bn,
            keep_best=not args.keep_last,
            ema_decay=args.ema_decay,
            precision=args.precision,
            compile=args.compile,
            budget_seconds=args.budget_seconds,
            generator=generator,
            context=context,
            progress=not args.no_progress,
            description=args.head,
            hold_distance_bias=args.hold_distance_bias,
            relational_first_hop_delay=args.relational_first_hop_delay,
        )
        if context.is_main:
            result = evaluate_vqa(
                model,
                test.batches(args.images_per_batch, device=context.device, by_image=True),
                device=context.device,
                precision=args.precision,
            )
            metrics = {
                "test_acc": result["acc"],
                **{f"test_acc_{k}": v for k, v in result["acc_by_type"].items()},
                "final_train_loss": history.last["train_loss"],
                "epochs": len(history.epochs),
                "seconds": time.perf_counter() - started,
                "world_size": context.world_size,
            }
            save_vqa_checkpoint(
                args.checkpoint,
                model,
                train.answers,
                metrics=metrics,
                vocabulary=list(train.tokenizer.vocab) if tokenizer == "words" else None,
            )
            print(json.dumps(metrics))
    except BaseException:
        cleanup(context, failed=True)
        raise
    cleanup(context)
    return 0


if __name__ == "__main__":
    status = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a torchrun worker: see exit_process
        exit_process(status)
    sys.exit(status)
