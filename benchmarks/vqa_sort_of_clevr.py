"""Sort-of-CLEVR VQA: every fusion head trained by the same recipe, over several seeds, in one run.

For each head (``concat``, ``relation``, ``film``, ``cross_attention``, ``co_attention``,
``transformer``) and each of ``--seeds`` seeds, with text questions: train from scratch with
the course's recipe (``mmtutorial.models.vqa_training.train_vqa``: a non-relational
curriculum, warm-up then cosine decay per batch, BatchNorm statistics recomputed before each
validation, the best validation epoch's weights kept), then record test accuracy per
question type and family, accuracy on the held-out paraphrase templates, the validation
curve, and wall time until validation accuracy first reached 95% non-relational and 85% /
95% relational. Then, for the best head alone (so nothing else shares the device), training
throughput (questions/s) in fp32, bf16, bf16 + torch.compile and the fastest configuration
(a larger batch, CUDA graphs on a GPU, channels-last), and a profile of one step.

    python benchmarks/vqa_sort_of_clevr.py                    # CPU preset: 3 seeds x 6 heads, 2 at a time
    python benchmarks/vqa_sort_of_clevr.py --preset gpu       # GPU: the paper's 9,800 images, all runs at once
    python benchmarks/vqa_sort_of_clevr.py --heads film --seeds 1   # some heads / seeds only
    python benchmarks/vqa_sort_of_clevr.py --merge a/*.json b/*.json --out c   # runs made apart, same flags

Independent runs (head, seed) go to ``--jobs`` child processes at once (each with its share
of the CPU threads; one GPU holds them all), each under a ``--run-timeout``; their rows
merge into one file, ``benchmarks/results/vqa_sort_of_clevr-<device>.json`` (format in
ARCHITECTURE.md), together with the rows of earlier runs made with the same training config.
``best_head`` is the attention head (cross_attention, co_attention, transformer) with the
best mean relational test accuracy; the summary keys ``best_*`` describe it over its seeds.
"""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from argparse import ArgumentTypeError, BooleanOptionalAction
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mmtutorial.cli import (  # noqa: E402
    ArgumentParser,
    fail,
    int_at_least,
    nonnegative_float,
    open_unit_float,
    positive_float,
    positive_int,
)
from mmtutorial.data import SortOfClevr  # noqa: E402
from mmtutorial.data.sort_of_clevr import COLORS, QUESTION_TYPES  # noqa: E402
from mmtutorial.models.vqa import ATTENTION_HEADS, HEADS, RELATE_HOPS, VQAConfig, VQAModel  # noqa: E402
from mmtutorial.models.vqa_diagnostics import distance_hop_statistics  # noqa: E402
from mmtutorial.models.vqa_heads import AVOID_MODES, POSITION_MODES, SIGN_MODES, DistanceBiasedHop  # noqa: E402
from mmtutorial.models.vqa_training import (  # noqa: E402
    CURRICULUM_OPTIONS,
    evaluate_vqa,
    longest_curriculum,
    seconds_to_accuracy,
    train_throughput,
    train_vqa,
)
from mmtutorial.outputs import OutputFolderError, atomic_write_json, prepare_output_folder  # noqa: E402
from mmtutorial.training import pick_device, seed_everything  # noqa: E402
from mmtutorial.training.benchmarking import (  # noqa: E402
    device_label,
    processor_name,
    results_lock,
    results_path,
    write_results,
)
from mmtutorial.training.distributed import DistributedContext  # noqa: E402

NAME = "vqa_sort_of_clevr"
NONREL, REL = QUESTION_TYPES[0], QUESTION_TYPES[1]

#: The recipe and sizes per preset: "cpu" trains on 9,000 images, "gpu" the same recipe on
#: the paper's data (9,800 training images, 196k questions). Why each training value:
#: notebook 09 and the README's *The VQA model and its training recipe*.
_CPU_PRESET = {
    # every head for 3 seeds met every CPU target on a 2-core Intel Xeon (the best head,
    # cross-attention, 0.995 / 0.941 mean, every head's non-relational mean >= 0.9; the committed
    # file, merged from benchmarks/results/exploratory/candidate-cpu-preset-9000-concat-256-30+20-
    # intel-xeon, transformer-encoders-2e-3-head-5e-4-intel-xeon and a relation run of seed 1,
    # README's *The CPU preset*). The preset before it
    # (3,000 images, 20 + 24 epochs, the grid's centres) met two of the four targets:
    # benchmarks/results/previous/cpu-20+24ep-bias4-ema
    "n_train": 9000,
    "n_val": 200,
    "n_test": 200,
    "dim": 64,
    "hidden": 64,
    # 4 stride-2 convs: a 5x5 region grid. 3 (10x10, with distance_bias_avoid "peak")
    # answered >= 0.996 non-relational on all 4 seeds tried, in ~3x the time, but 0.7735-0.930
    # relational (README, benchmarks/results/exploratory/grid-10x10-avoid-peak)
    "cnn_layers": 4,
    "cnn_merge": 1,
    "images_per_batch": 16,
    "lr": 2e-3,
    # a head's own peak rate for the whole model: none now (the 3,000-image preset gave the
    # Transformer 5e-4 here); its rate is now its fusion head's alone (head_fusion_lr below)
    "head_lr": {},
    # a head's own MLP width (--head-hidden): concat (the paper's CNN+MLP) at 256 with 30 + 20
    # epochs, 0.9075 +- 0.021 non-relational over 3 seeds, against about 0.62-0.68 at 64
    # units and the others' epochs (exploratory/candidate-cpu-preset-9000-concat-256-30+20-
    # intel-xeon); at 512 with the old preset it traded relational accuracy for
    # non-relational (benchmarks/results/ablations/concat-512-wide)
    "head_hidden": {"concat": 256},
    # VQAConfig.dropout: before a head's last layer (and in its attention, where it has any);
    # a head's own value: --head-dropout
    "dropout": 0.0,
    "head_dropout": {},
    # a head's own epochs (--head-epochs HEAD=C+E): curriculum and all-question epochs
    "head_curriculum_epochs": {"concat": 30},
    "head_epochs": {"concat": 20},
    # the fusion head's own peak learning rate (train_vqa's head_lr), the encoders keeping
    # the run's lr (--fusion-lr HEAD=LR). The Transformer at 2e-3 fell to chance after its
    # warm-up; at 5e-4 throughout one seed of 3 never found the named object (0.7705); its
    # fusion head at 5e-4 with the encoders at 2e-3: 0.9945 +- 0.003, min 0.991
    # (exploratory/transformer-encoders-2e-3-head-5e-4-intel-xeon)
    "fusion_lr": None,
    "head_fusion_lr": {"transformer": 5e-4},
    "weight_decay": 0.0,
    "warmup_fraction": 0.1,
    # x4 with 24 relational epochs: every seed of 4 past 0.91 relational; at 1, one seed
    # in 3 fell short (benchmarks/results/ablations/distance-bias-scale-4, relational-24-epochs)
    "distance_bias_scale": 4.0,
    "distance_bias_avoid": "weights",
    "distance_bias_heads": 1,
    # learned positions, w and u held through the curriculum, the distances under 8 left
    # out, and the relational questions kept from the first hop for one epoch: all 8 seeds of
    # cross-attention met both CPU targets (ablations/n-train-9000-10+10ep-exclude-8-hold-
    # learned-positions-first-hop-delay-1; relational 0.944 +- 0.015, min 0.9135; 9 of 10 with
    # seeds 8-9: exploratory/...-first-hop-delay-1-seeds-8-9, seed 8 lost w's sign). With the
    # grid's centres and no wait 7 of 8 (...-exclude-8-hold, min 0.759); learned positions with
    # the hold alone 5 of 8 (...-exclude-8-hold-learned-positions). Without the wait, the
    # relational questions' first epoch pulled the first hop off the named object on every
    # seed, and on the lost seeds it never came back (notebook 09)
    "distance_positions": "learned",
    "distance_bias_signs": "learned",
    "distance_bias_exclude": 8.0,
    "hold_distance_bias": True,
    "relational_first_hop_delay": 1,
    # the hop's read-out cross_attention relates to every region: "last" (hop 2's) is what
    # the committed CPU runs trained
    "relate_hop": "last",
    # the average does not follow a one-epoch fall: largest late fall 0.005, not 0.065
    # (benchmarks/results/ablations/recipe-bias4-ema-24ep)
    "ema_decay": 0.995,
    "translate": False,
    # 10 + 10 at 9,000 images (3x the steps per epoch of the old preset's 3,000); 0 never
    # found the named object (benchmarks/results/ablations/recipe-bias4-ema-no-curriculum)
    "curriculum_epochs": 10,
    "epochs": 10,
    "budget_seconds": None,
    "precision": "fp32",
    "compile": False,
    "seeds": 3,
    "jobs": 2,
    "throughput_steps": 10,
    "fastest_images_per_batch": 64,
}
PRESETS = {
    "cpu": _CPU_PRESET,
    # the CPU recipe at the paper's data size: everything that trains is the CPU preset's (a
    # test checks it) but n_train. That recipe's cross-attention rehearsed on a 2-core CPU at
    # 9,800 images in fp32 (exploratory/gpu-preset-cross-attention-on-cpu): seed 0 0.952, seed 1
    # 0.797 relational (w took one sign for both; the one-epoch first-hop wait came after). The
    # hop-2 hold with the curriculum until 0.98 also gave 7 of 8 seeds, but the 0.98 rule
    # lengthens the curriculum of every head that takes off late and cost FiLM 0.16-0.19
    # relational on 2 seeds of 3 (exploratory/candidate-cpu-preset-9000-10+10ep-exclude-8-hold-
    # hop-until-0.98). The same model size: a GPU step of this model is bound by kernel launches,
    # not arithmetic (issue 15's H200 rows: 37.9k questions/s fp32, 34.5k bf16, 37.5k bf16 +
    # compile). The same batch: at 32 (about half the steps; tried with the hop-2 hold and the
    # 0.98 rule) the curricula of 2 seeds ran 14 and 13 epochs, where at 16 on 9,000 images they
    # switched at 10, and relational accuracy ended at 0.711 and 0.620 (a 2-core CPU)
    # (exploratory/gpu-preset-images-per-batch-32-on-cpu). fp32 without compile: launch-bound,
    # bf16 and compile gave no speed, and each of 18 processes compiling would cost CPU time the
    # launches need; the throughput measurement still reports bf16, bf16 + compile and CUDA
    # graphs. concat's 50 epochs may not fit a --budget-seconds run (PROBE=1 in gpu_run.sh
    # estimates each head's time).
    "gpu": {
        **copy.deepcopy(_CPU_PRESET),  # its per-head tables its own: nothing edits the CPU preset's
        "n_train": 9800,
        "jobs": 18,
        "throughput_steps": 50,
        "fastest_images_per_batch": 256,
    },
}
#: Issue 15's targets, per kind of device: (summary key, comparison, bound). The benchmark
#: records for each whether it was met; tests check the verdicts against the numbers, and
#: the README and notebook 09 report them, met or not.
TARGETS = {
    "cpu": (
        ("best_relational_acc_min", ">=", 0.90),
        ("best_nonrelational_acc_min", ">=", 0.99),
        ("worst_head_nonrelational_acc_mean", ">=", 0.90),
        ("max_late_val_drop", "<=", 0.05),
    ),
    "gpu": (
        ("best_relational_acc_mean", ">=", 0.98),
        ("best_relational_acc_min", ">=", 0.96),
        ("best_nonrelational_acc_min", ">=", 0.99),
        ("best_seconds_to_95_relational_max", "<=", 60.0),
        ("worst_head_nonrelational_acc_mean", ">=", 0.94),
        ("train_samples_per_s_fastest", ">=", 150_000),
    ),
}


#: The targets are over this many seeds a head (issue 15): fewer seeds meet none of them.
TARGET_SEEDS = 3


def heads_with_fewer_seeds(summary: dict) -> list[str]:
    """The heads of ``summary`` trained on fewer than :data:`TARGET_SEEDS` seeds."""
    return [h for h in HEADS if summary.get(f"{h}_seeds") is not None and summary[f"{h}_seeds"] < TARGET_SEEDS]


def target_blockers(summary: dict, key: str) -> str:
    """What beside its value keeps target ``key`` unmet in ``summary`` ("" if nothing): heads
    not run or under :data:`TARGET_SEEDS` seeds (any head's, for the target about every head;
    the best head's, for the targets about it). The rule :func:`check_targets` applies and the
    benchmark's last line explains."""
    few = heads_with_fewer_seeds(summary)
    every = key == "worst_head_nonrelational_acc_mean"
    not_run = (summary.get("heads_not_run") or []) if every else []
    under = few if every else [h for h in few if h == summary.get("best_head")]
    reasons = []
    if not_run:
        reasons.append(f"heads not run: {', '.join(not_run)}")
    if under:
        reasons.append(f"under {TARGET_SEEDS} seeds: {', '.join(under)}")
    return "; ".join(reasons)


def check_targets(summary: dict, kind: str) -> dict:
    """``{key: {"target": ">= 0.9", "value": ..., "met": bool}}`` for the targets of ``kind``
    ("cpu" or "gpu"); a value that was not measured (None) does not meet its target, and
    neither does one that :func:`target_blockers` names a reason against."""
    verdicts = {}
    for key, comparison, bound in TARGETS[kind]:
        value = summary.get(key)
        met = value is not None and (value >= bound if comparison == ">=" else value <= bound)
        met = met and not target_blockers(summary, key)
        verdicts[key] = {"target": f"{comparison} {bound}", "value": value, "met": met}
    return verdicts


#: What decides accuracy; throughput settings, job counts and seeds do not.
NOT_TRAINING = (
    "throughput_steps",
    "fastest_images_per_batch",
    "jobs",
    "seeds",
    "seed_offset",
    "run_timeout",
    "throughput",
    "probe_hops",  # measures, changes nothing trained
)
#: Config keys added after results were first committed, with the value files from before
#: trained with.
CONFIG_ADDED_LATER = {
    "translate": False,
    "head_lr": {},
    "relate_hop": "first",  # runs before the option related the first hop
    "distance_bias": False,
    "head_hidden": {},
    "distance_bias_scale": 1.0,
    "ema_decay": None,
    "cnn_layers": 4,
    "distance_bias_avoid": "weights",
    "cnn_merge": 1,
    "distance_bias_heads": 1,
    "distance_positions": "centres",
    "distance_bias_signs": "learned",
    "distance_bias_exclude": None,
    "hold_distance_bias": False,
    "hold_biased_hop": False,
    "curriculum_until": None,
    "max_curriculum_epochs": None,
    "num_objects": 6,
    "relational_first_hop_delay": 0,
    "dropout": 0.0,
    "head_dropout": {},
    "head_curriculum_epochs": {},
    "head_epochs": {},
    "fusion_lr": None,
    "head_fusion_lr": {},
}


def with_later_keys(config: dict) -> dict:
    """``config`` with every key added later filled in (:data:`CONFIG_ADDED_LATER`): the one
    place that says what a file from before an option trained with."""
    return {**CONFIG_ADDED_LATER, **config}


def training_config(config: dict) -> dict:
    """What of a results file's ``config`` decides accuracy, with every key added later
    filled in for files from before it, so runs made apart (or on other machines) compare."""
    return {k: v for k, v in with_later_keys(config).items() if k not in NOT_TRAINING}


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="default: 'gpu' on a GPU, else 'cpu'")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--heads", nargs="+", choices=list(HEADS), default=list(HEADS))
    parser.add_argument("--question-encoder", choices=("gru", "transformer", "minilm", "structured"), default="gru")
    parser.add_argument(
        "--relate-hop",
        choices=RELATE_HOPS,
        default=None,
        help="whose read-out the cross_attention head compares with every region (VQAConfig.relate_hop; "
        "default: the preset's)",
    )
    parser.add_argument(
        "--distance-bias",
        action=BooleanOptionalAction,
        default=True,
        help="cross_attention's second hop adds a distance bias (VQAConfig.distance_bias; on by default)",
    )
    parser.add_argument(
        "--distance-bias-scale",
        type=positive_float,
        default=None,
        help="factor on the distance bias's question-predicted strengths (VQAConfig.distance_bias_scale; "
        "default: the preset's)",
    )
    parser.add_argument(
        "--distance-bias-avoid",
        choices=AVOID_MODES,
        default=None,
        help="what the distance bias's avoid-the-found-object strength multiplies: the previous hop's "
        "weights, those over their peak, or a kernel on the distance from the found position "
        "(VQAConfig.distance_bias_avoid; default: the preset's)",
    )
    parser.add_argument(
        "--ema-decay",
        type=ema_decay_or_none,
        default=None,
        help="validate and keep a moving average of the weights with this decay per step, e.g. 0.995, "
        "or 'none' for no average (default: the preset's)",
    )
    parser.add_argument(
        "--translate",
        action=BooleanOptionalAction,
        default=None,
        help="shift training images at random, left/top answers recomputed (default: the preset's)",
    )
    parser.add_argument(
        "--distance-positions",
        choices=POSITION_MODES,
        default=None,
        help="where cross_attention's biased hop measures distances from: the region centres, or centres "
        "each region moves by an offset it learns (VQAConfig.distance_positions; default: the preset's)",
    )
    parser.add_argument(
        "--distance-bias-heads",
        type=positive_int,
        default=None,
        help="heads of cross_attention's distance-biased hop, their near/far preference starting "
        "spread (VQAConfig.distance_bias_heads; default: the preset's)",
    )
    parser.add_argument(
        "--distance-bias-signs",
        choices=SIGN_MODES,
        default=None,
        help="what sets the sign of each biased head's w: the question, or the head (half look near, half "
        "far; needs an even --distance-bias-heads) (VQAConfig.distance_bias_signs; default: the preset's)",
    )
    parser.add_argument(
        "--distance-bias-exclude",
        type=nonnegative_float,
        default=None,
        help="keep u of cross_attention's biased hop at most -E, so it never turns back to the object "
        "found (VQAConfig.distance_bias_exclude; default: the preset's, free u)",
    )
    parser.add_argument(
        "--hold-distance-bias",
        action=BooleanOptionalAction,
        default=None,
        help="cross_attention's biased hop uses but does not train its w and u during the non-relational "
        "curriculum (train_vqa's hold_distance_bias; default: the preset's, trained throughout)",
    )
    parser.add_argument(
        "--hold-biased-hop",
        action=BooleanOptionalAction,
        default=None,
        help="cross_attention's biased hop trains none of its weights during the non-relational curriculum, "
        "w and u included (train_vqa's hold_biased_hop; default: the preset's, trained throughout)",
    )
    parser.add_argument(
        "--relational-first-hop-delay",
        type=int_at_least(0),
        default=None,
        metavar="EPOCHS",
        help="for this many epochs after the curriculum, relational questions read cross_attention's first "
        "hop without training it (train_vqa's relational_first_hop_delay; default: the preset's, 0)",
    )
    parser.add_argument(
        "--cnn-layers",
        type=positive_int,
        default=None,
        help="stride-2 convs of the CNN (VQAConfig.cnn_layers): 4 gives 75x75 images a 5x5 region grid, "
        "3 a 10x10 one (default: the preset's)",
    )
    parser.add_argument(
        "--cnn-merge",
        type=positive_int,
        default=None,
        help="stack each MxM block of the CNN's last map into one region (VQAConfig.cnn_merge): "
        "--cnn-layers 3 --cnn-merge 2 is a 5x5 grid whose regions keep their 4 sub-cells (default: the preset's)",
    )
    parser.add_argument("--seeds", type=positive_int, default=None, help="seeds per head, each from scratch")
    parser.add_argument("--seed-offset", type=int_at_least(0), default=0, help="first seed")
    parser.add_argument("--jobs", type=positive_int, default=None, help="runs (head, seed) at once")
    parser.add_argument("--run-timeout", type=positive_float, default=3600.0, help="seconds one run may take")
    parser.add_argument(
        "--epochs", type=positive_int, default=None, help="epochs on all questions, every head's (replaces head_epochs)"
    )
    parser.add_argument(
        "--curriculum-epochs",
        type=int_at_least(0),
        default=None,
        help="non-relational epochs first, every head's (replaces head_curriculum_epochs)",
    )
    parser.add_argument(
        "--curriculum-until",
        type=open_unit_float,
        default=None,
        help="after --curriculum-epochs, stay on non-relational questions until validation non-relational "
        "accuracy reaches this, taking the extra epochs from --epochs (train_vqa's curriculum_until; "
        "default: the preset's, a fixed curriculum)",
    )
    parser.add_argument(
        "--max-curriculum-epochs",
        type=positive_int,
        default=None,
        help="the longest --curriculum-until may make the curriculum (default: curriculum epochs + epochs // 2)",
    )
    parser.add_argument("--budget-seconds", type=positive_float, default=None, help="a safety stop per run")
    parser.add_argument("--n-train", type=positive_int, default=None, help="training images (20 questions each)")
    parser.add_argument("--n-val", type=positive_int, default=None, help="validation images (picks the best epoch)")
    parser.add_argument("--n-test", type=positive_int, default=None, help="test images (and held-out paraphrases)")
    parser.add_argument(
        "--num-objects",
        type=int,
        choices=range(2, len(COLORS) + 1),
        metavar=f"2..{len(COLORS)}",
        default=None,
        help="objects per image (default 6, the paper's): how hard finding the named one is",
    )
    parser.add_argument("--images-per-batch", type=positive_int, default=None)
    parser.add_argument(
        "--lr",
        type=positive_float,
        default=None,
        help="peak learning rate of every head, every part of the model (replaces head_lr and head_fusion_lr; "
        "--fusion-lr may follow)",
    )
    parser.add_argument(
        "--fusion-lr",
        nargs="+",
        type=head_fusion_lr,
        default=None,
        metavar="HEAD=LR",
        help="the fusion head's own peak learning rate in HEAD's runs (train_vqa's head_lr), its image and "
        "question encoders keeping the run's rate, e.g. transformer=5e-4",
    )
    parser.add_argument(
        "--head-hidden",
        nargs="+",
        type=head_width,
        default=None,
        metavar="HEAD=WIDTH",
        help="a head's own MLP width instead of the preset's hidden, e.g. concat=512 (other heads keep the preset's)",
    )
    parser.add_argument(
        "--head-dropout",
        nargs="+",
        type=head_dropout,
        default=None,
        metavar="HEAD=P",
        help="a head's own dropout (VQAConfig.dropout: before its last layer, and in its attention) instead "
        "of the preset's, e.g. concat=0.5 (the paper's CNN+MLP)",
    )
    parser.add_argument(
        "--head-epochs",
        nargs="+",
        type=head_epochs,
        default=None,
        metavar="HEAD=C+E",
        help="a head's own epochs instead of the preset's: C non-relational (curriculum) epochs, then E "
        "on all questions, e.g. concat=30+20",
    )
    parser.add_argument("--throughput-steps", type=positive_int, default=None)
    parser.add_argument(
        "--probe-hops",
        action="store_true",
        help="record, per epoch and question family, the distance-biased hop's w and u and where "
        "its weight lies (distance_hop_statistics on the validation split) in each cross_attention "
        "row's val_curve; changes nothing trained",
    )
    parser.add_argument(
        "--throughput",
        choices=("best", "all", "none"),
        default="best",
        help="which heads' throughput to measure, alone, after training",
    )
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    parser.add_argument(
        "--summarize-only",
        action="store_true",
        help="train nothing: recompute the summary and target verdicts of the results file in --out",
    )
    parser.add_argument(
        "--throughput-only",
        action="store_true",
        help="train nothing: measure the best head of the results file in --out (under that file's config) "
        "and add its throughput row",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="FILE",
        help="train nothing: add the training rows of these results files (runs made apart, e.g. one seed "
        "each, on this kind of machine and with these flags) to the file in --out",
    )
    parser.add_argument("--worker", default=None, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.merge and (args.summarize_only or args.throughput_only):
        parser.error("argument --merge: not with --summarize-only or --throughput-only (each rewrites one file)")
    return args


def split_head_value(text: str, form: str) -> tuple[str, str]:
    """``"concat=512"`` -> ``("concat", "512")`` for a ``HEAD=VALUE`` flag written ``form``
    (e.g. ``"HEAD=WIDTH"``); a head name not in :data:`HEADS` is an ``ArgumentTypeError``."""
    head, _, value = text.partition("=")
    if head not in HEADS:
        raise ArgumentTypeError(f"expected {form} with HEAD one of {list(HEADS)}, got {text!r}")
    return head, value


def head_width(text: str) -> tuple[str, int]:
    """``"concat=512"`` -> ``("concat", 512)``: one head's MLP width, for ``--head-hidden``."""
    head, width = split_head_value(text, "HEAD=WIDTH")
    try:
        return head, positive_int(width)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"expected HEAD=WIDTH with WIDTH an int >= 1, got {text!r}") from None


def head_dropout(text: str) -> tuple[str, float]:
    """``"concat=0.5"`` -> ``("concat", 0.5)``: one head's dropout, for ``--head-dropout``."""
    head, value = split_head_value(text, "HEAD=P")
    try:
        p = float(value)
    except ValueError:
        p = math.nan
    if not 0.0 <= p < 1.0:
        raise ArgumentTypeError(f"expected HEAD=P with P a number in [0, 1), got {text!r}")
    return head, p


def head_epochs(text: str) -> tuple[str, tuple[int, int]]:
    """``"concat=30+20"`` -> ``("concat", (30, 20))``: one head's curriculum and all-question
    epochs, for ``--head-epochs``."""
    head, value = split_head_value(text, "HEAD=C+E")
    curriculum, plus, epochs = value.partition("+")
    try:
        if not plus:
            raise ArgumentTypeError
        return head, (int_at_least(0)(curriculum), positive_int(epochs))
    except ArgumentTypeError:
        raise ArgumentTypeError(f"expected HEAD=C+E with C an int >= 0 and E an int >= 1, got {text!r}") from None


def head_fusion_lr(text: str) -> tuple[str, float]:
    """``"transformer=5e-4"`` -> ``("transformer", 0.0005)``: one head's fusion-head learning
    rate, for ``--fusion-lr``."""
    head, value = split_head_value(text, "HEAD=LR")
    try:
        return head, positive_float(value)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"expected HEAD=LR with LR a positive finite number, got {text!r}") from None


NO_AVERAGE = "none"


def ema_decay_or_none(text: str) -> float | str:
    """``--ema-decay``: a decay strictly between 0 and 1, or ``"none"`` for no average (so a
    preset's average can be turned off from the command line)."""
    if text == NO_AVERAGE:
        return NO_AVERAGE
    try:
        return open_unit_float(text)
    except ArgumentTypeError:
        raise ArgumentTypeError(f"expected a number strictly between 0 and 1 or {NO_AVERAGE!r}, got {text!r}") from None


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS  # the child processes' entry: JSON runs spec


def build_config(args, device: torch.device) -> dict:
    preset = args.preset or target_kind(device)
    config = {
        "preset": preset,
        **PRESETS[preset],
        "question_encoder": args.question_encoder,
        "distance_bias": args.distance_bias,
    }
    for key in (
        "epochs",
        "curriculum_epochs",
        "budget_seconds",
        "n_train",
        "n_val",
        "n_test",
        "images_per_batch",
        "lr",
        "seeds",
        "jobs",
        "throughput_steps",
        "translate",
        "distance_bias_scale",
        "cnn_layers",
        "cnn_merge",
        "distance_bias_avoid",
        "distance_bias_heads",
        "distance_positions",
        "distance_bias_signs",
        "distance_bias_exclude",
        "hold_distance_bias",
        "hold_biased_hop",
        "curriculum_until",
        "max_curriculum_epochs",
        "num_objects",
        "relational_first_hop_delay",
        "relate_hop",
    ):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.ema_decay is not None:
        config["ema_decay"] = None if args.ema_decay == NO_AVERAGE else args.ema_decay
    if args.lr is not None:
        config["head_lr"], config["head_fusion_lr"] = {}, {}  # one learning rate for every head, as asked
    if args.fusion_lr:
        config["head_fusion_lr"] = {**config["head_fusion_lr"], **dict(args.fusion_lr)}
    if args.head_hidden:  # added to the preset's table, as --head-dropout and --fusion-lr are
        config["head_hidden"] = {**config["head_hidden"], **dict(args.head_hidden)}
    if args.head_dropout:
        config["head_dropout"] = {**config["head_dropout"], **dict(args.head_dropout)}
    if args.epochs is not None or args.curriculum_epochs is not None:
        # the epochs asked for, for every head (as --lr does for the rates); --head-epochs may follow
        config["head_curriculum_epochs"], config["head_epochs"] = {}, {}
    for head, (curriculum, epochs) in args.head_epochs or ():
        config["head_curriculum_epochs"] = {**config["head_curriculum_epochs"], head: curriculum}
        config["head_epochs"] = {**config["head_epochs"], head: epochs}
    config["seed_offset"] = args.seed_offset
    check_adaptive_curriculum(config)
    if args.probe_hops:
        config["probe_hops"] = True
    if config["precision"] == "bf16" and device.type == "cpu":
        config["precision"] = "fp32"  # bf16 autocast on CPU is slower than fp32
    if device.type == "cpu":
        config["compile"] = False
    return config


def load_splits(config: dict) -> dict[str, SortOfClevr]:
    """The data, the same for every run: a run's seed changes its initialisation and shuffling."""
    tokenizer = "minilm" if config["question_encoder"] == "minilm" else "words"
    sizes = {k: with_later_keys(config)[k] for k in ("n_train", "n_val", "n_test", "num_objects")}
    return {
        split: SortOfClevr(split, tokenizer=tokenizer, data_seed=0, **sizes)
        for split in ("train", "val", "test", "test_heldout")
    }


def model_config(head: str, config: dict, train: SortOfClevr) -> VQAConfig:
    """``head``'s :class:`VQAConfig` under the benchmark ``config`` (its checks run here)."""
    config = with_later_keys(config)
    return VQAConfig(
        head=head,
        question_encoder=config["question_encoder"],
        num_answers=len(train.answers),
        vocab_size=len(train.tokenizer) if train.tokenizer is not None else None,
        pad_id=getattr(train, "pad_token_id", 0),
        dim=config["dim"],
        hidden=hidden_width(head, config),
        dropout=per_head(head, config, "head_dropout"),
        cnn_layers=config["cnn_layers"],
        cnn_merge=config["cnn_merge"],
        relate_hop=config["relate_hop"],
        distance_bias=config["distance_bias"],
        distance_bias_scale=config["distance_bias_scale"],
        distance_bias_avoid=config["distance_bias_avoid"],
        distance_bias_heads=config["distance_bias_heads"],
        distance_positions=config["distance_positions"],
        distance_bias_signs=config["distance_bias_signs"],
        distance_bias_exclude=config["distance_bias_exclude"],
    )


def new_model(head: str, config: dict, train: SortOfClevr) -> VQAModel:
    return VQAModel(model_config(head, config, train))


#: The settings a head can have its own value of: the config key of the per-head table ->
#: the key of the value every other head uses.
PER_HEAD = {
    "head_lr": "lr",
    "head_hidden": "hidden",
    "head_dropout": "dropout",
    "head_curriculum_epochs": "curriculum_epochs",
    "head_epochs": "epochs",
    "head_fusion_lr": "fusion_lr",
}


def per_head(head: str, config: dict, table: str) -> float | int:
    """``head``'s entry in ``config[table]`` (a :data:`PER_HEAD` key), else the shared value
    (a file from before the table existed: what it trained with, :func:`with_later_keys`)."""
    config = with_later_keys(config)
    return config[table].get(head, config[PER_HEAD[table]])


def hidden_width(head: str, config: dict) -> int:
    """``head``'s MLP width: its entry in the preset's ``head_hidden``, else ``hidden``."""
    return per_head(head, config, "head_hidden")


def check_adaptive_curriculum(config: dict) -> None:
    """Exit, naming the flags, if ``config``'s curriculum options do not fit together (before
    any run starts, not in every child process): train_vqa's own rules (longest_curriculum)."""
    config = with_later_keys(config)
    # every head's epochs: the preset's, and those of heads with their own (--head-epochs)
    for head in (None, *config["head_epochs"]):
        try:
            longest_curriculum(
                config["curriculum_epochs"] if head is None else per_head(head, config, "head_curriculum_epochs"),
                config["epochs"] if head is None else per_head(head, config, "head_epochs"),
                config["curriculum_until"],
                config["max_curriculum_epochs"],
                names={key: "--" + key.replace("_", "-") for key in CURRICULUM_OPTIONS},  # the flags
            )
        except ValueError as error:
            fail(str(error) if head is None else f"{head} (--head-epochs): {error}")


def learning_rate(head: str, config: dict) -> float:
    """``head``'s peak learning rate: its entry in the preset's ``head_lr``, else ``lr``."""
    return per_head(head, config, "head_lr")


def late_val_drop(curve: list[dict]) -> float:
    """The largest fall of validation relational accuracy between consecutive epochs in the
    second half of training (0 when it never falls)."""
    second_half = [row["relational"] for row in curve[len(curve) // 2 :]]
    return max([0.0] + [a - b for a, b in zip(second_half, second_half[1:], strict=False)])


def train_head(head: str, seed: int, config: dict, device: torch.device) -> dict:
    """Train one head from scratch with one seed; return its result row."""
    config = with_later_keys(config)
    splits = load_splits(config)
    generator = seed_everything(seed, deterministic=False)
    batches = {
        split: splits[split].batches(config["images_per_batch"], device=device, by_image=True)
        for split in ("test", "test_heldout")
    }
    model = new_model(head, config, splits["train"]).to(device)
    probe = None
    has_biased_hop = any(isinstance(m, DistanceBiasedHop) for m in model.modules())
    if config.get("probe_hops") and has_biased_hop:
        val_batches = splits["val"].batches(config["images_per_batch"], device=device, by_image=True)
        probe = partial(distance_hop_statistics, batches=val_batches, device=device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    history = train_vqa(
        model,
        splits["train"],
        splits["val"],
        images_per_batch=config["images_per_batch"],
        epochs=per_head(head, config, "head_epochs"),
        curriculum_epochs=per_head(head, config, "head_curriculum_epochs"),
        lr=learning_rate(head, config),
        head_lr=per_head(head, config, "head_fusion_lr"),
        weight_decay=config["weight_decay"],
        warmup_fraction=config["warmup_fraction"],
        ema_decay=config["ema_decay"],
        translate=config["translate"],
        precision=config["precision"],
        compile=config["compile"],
        budget_seconds=config["budget_seconds"],
        generator=generator,
        context=DistributedContext(device=device),
        progress=False,
        description=f"{head}/{seed}",
        probe=probe,
        hold_distance_bias=config["hold_distance_bias"] and has_biased_hop,
        hold_biased_hop=config["hold_biased_hop"] and has_biased_hop,
        curriculum_until=config["curriculum_until"],
        max_curriculum_epochs=config["max_curriculum_epochs"],
        relational_first_hop_delay=config["relational_first_hop_delay"] if has_biased_hop else 0,
    )
    test = evaluate_vqa(model, batches["test"], device=device, precision=config["precision"])
    heldout = evaluate_vqa(model, batches["test_heldout"], device=device, precision=config["precision"])
    curve = [
        {
            "epoch": r["epoch"],
            "seconds": round(sum(x["seconds"] for x in history.epochs[: i + 1]), 2),
            "nonrelational": r["val_acc_by_group"][NONREL],
            "relational": r["val_acc_by_group"][REL],
            **({"probe": r["probe"]} if "probe" in r else {}),
        }
        for i, r in enumerate(history.epochs)
    ]
    return {
        "measurement": "training",
        "head": head,
        "seed": seed,
        "lr": learning_rate(head, config),
        "fusion_lr": per_head(head, config, "head_fusion_lr"),
        "hidden": hidden_width(head, config),
        "dropout": per_head(head, config, "head_dropout"),
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs": len(history.epochs),
        "curriculum_epochs_run": history.column("phase").count("non-relational"),
        "best_epoch": history.best_epoch,
        "train_seconds": round(sum(row["seconds"] for row in history.epochs), 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "test_acc": test["acc"],
        "nonrelational_acc": test["acc_by_type"][NONREL],
        "relational_acc": test["acc_by_type"][REL],
        "acc_by_family": test["acc_by_family"],
        "heldout_acc": heldout["acc"],
        "seconds_to_95_nonrelational": seconds_to_accuracy(history, NONREL, 0.95),
        "seconds_to_85_relational": seconds_to_accuracy(history, REL, 0.85),
        "seconds_to_95_relational": seconds_to_accuracy(history, REL, 0.95),
        "late_val_drop": late_val_drop(curve),
        "peak_gpu_bytes": torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None,
        "val_curve": curve,
    }


def throughput_rows(
    head: str, config: dict, device: torch.device, on_mode: Callable[[dict], None] | None = None
) -> dict:
    """Training questions/s of ``head`` in fp32, bf16, bf16 + torch.compile and the fastest
    configuration (a larger batch; on a GPU also CUDA graphs), with a profile of fp32 steps.
    ``on_mode`` is given the row so far before each mode after the first, its ``"unfinished"``
    naming the modes still to come, so a run stopped by a timeout keeps what it measured."""
    train = load_splits(config)["train"]
    batch = config["images_per_batch"]
    big = config["fastest_images_per_batch"]
    modes = {
        "fp32": {"precision": "fp32", "images": batch, "profile": True},
        "bf16": {"precision": "bf16", "images": batch},
        "bf16_compile": {"precision": "bf16", "compile": True, "images": batch},
        "fastest": {
            "precision": "bf16" if device.type == "cuda" else "fp32",
            "compile": device.type == "cuda",
            "compile_mode": "reduce-overhead" if device.type == "cuda" else None,
            "channels_last": True,
            "images": big,
        },
    }
    row: dict = {"measurement": "throughput", "head": head}
    for index, (mode, options) in enumerate(modes.items()):
        if on_mode is not None and index > 0:
            on_mode({**row, "unfinished": list(modes)[index:]})
        options = dict(options)
        seed_everything(0, deterministic=False)
        images = min(options.pop("images"), len(train.images))  # a tiny run still measures
        batches = train.batches(images, shuffle=True, device=device, by_image=True, drop_last=True)
        try:
            measured = train_throughput(
                new_model(head, config, train),
                batches,
                device=device,
                steps=config["throughput_steps"],
                lr=learning_rate(head, config),
                **options,
            )
        except Exception as error:  # a configuration this machine cannot run is a result, not a crash
            row[f"train_samples_per_s_{mode}"] = None
            row[f"error_{mode}"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
            continue
        finally:
            torch._dynamo.reset()  # compiled graphs of one mode do not leak into the next
        row[f"train_samples_per_s_{mode}"] = measured["samples_per_s"]
        row[f"warmup_seconds_{mode}"] = measured["warmup_seconds"]
        if "profile" in measured:
            row["profile_fp32"] = measured["profile"]
    measured = {m: row[f"train_samples_per_s_{m}"] for m in modes if row.get(f"train_samples_per_s_{m}")}
    row["fastest_configuration"] = max(measured, key=measured.get) if measured else None
    row["fastest_configuration_details"] = {k: v for k, v in modes["fastest"].items() if k != "profile"}
    return row


def _mean_std_min(values: list[float]) -> tuple[float | None, float | None, float | None]:
    if not values:
        return None, None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, min(values)


def summarize(rows: list[dict], throughput: dict | None) -> dict:
    """Per head mean/std/min over seeds, the best attention head and the issue's summary keys."""
    by_head: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("measurement") == "training" and "error" not in row:
            by_head.setdefault(row["head"], []).append(row)
    summary: dict = {}
    for head, runs in by_head.items():
        for metric in ("nonrelational_acc", "relational_acc"):
            mean, std, low = _mean_std_min([r[metric] for r in runs])
            summary |= {f"{head}_{metric}_mean": mean, f"{head}_{metric}_std": std, f"{head}_{metric}_min": low}
        summary[f"{head}_seeds"] = len(runs)
    attention = [h for h in ATTENTION_HEADS if h in by_head]
    best = max(attention, key=lambda h: summary[f"{h}_relational_acc_mean"]) if attention else None
    runs = by_head.get(best, [])
    reached = [r["seconds_to_95_relational"] for r in runs]

    def mean_of(head: str, metric: str):
        return summary.get(f"{head}_{metric}_mean")

    summary |= {
        "best_head": best,
        "best_nonrelational_acc": mean_of(best, "nonrelational_acc"),
        "best_relational_acc": mean_of(best, "relational_acc"),
        "best_relational_acc_mean": mean_of(best, "relational_acc"),
        "best_relational_acc_min": summary.get(f"{best}_relational_acc_min"),
        "best_nonrelational_acc_min": summary.get(f"{best}_nonrelational_acc_min"),
        "max_late_val_drop": max((r["late_val_drop"] for r in runs), default=None),
        "worst_head_nonrelational_acc_mean": min(
            (summary[f"{h}_nonrelational_acc_mean"] for h in by_head), default=None
        ),
        "concat_relational_acc": mean_of("concat", "relational_acc"),
        "relation_relational_acc": mean_of("relation", "relational_acc"),
        "film_relational_acc": mean_of("film", "relational_acc"),
        "paraphrase_heldout_acc": statistics.fmean(r["heldout_acc"] for r in runs) if runs else None,
        "seconds_to_95_relational": statistics.fmean(reached) if runs and None not in reached else None,
        "best_seconds_to_95_relational_max": max(reached) if runs and None not in reached else None,
        "failed_runs": sum("error" in r for r in rows),
        # a run of some heads (--heads) says which it left out, so no target reads it as all
        "heads_not_run": [h for h in HEADS if h not in by_head],
    }
    throughput = throughput or {}  # None: not measured in this run
    summary |= {
        key: throughput.get(key)
        for key in (
            "train_samples_per_s_fp32",
            "train_samples_per_s_bf16",
            "train_samples_per_s_bf16_compile",
            "fastest_configuration",
        )
    }
    # the row's "fastest" mode is the large-batch configuration, which is not always the
    # fastest (on a 2-core CPU bf16 + compile beat it): the summary reports the fastest measured
    fastest = throughput.get("fastest_configuration")
    summary["train_samples_per_s_fastest"] = throughput.get(f"train_samples_per_s_{fastest}") if fastest else None
    return summary


#: Settings that only the cross_attention head reads (its relate hop and distance-biased hops,
#: and their training): the other heads build and train alike whatever their values, so
#: their rows stay valid when one of these changes (a test builds and trains them to check).
CROSS_ATTENTION_ONLY = (
    "relate_hop",
    "distance_bias",
    "distance_bias_scale",
    "distance_bias_avoid",
    "distance_bias_heads",
    "distance_positions",
    "distance_bias_signs",
    "distance_bias_exclude",
    "hold_distance_bias",
    "hold_biased_hop",
    "relational_first_hop_delay",
)


def previous_rows(path: Path, config: dict) -> list[dict]:
    """Rows of an earlier run trained as they would be now (to merge runs made apart): the
    same training config, and per head the same learning rate and MLP width (a ``head_lr``
    or ``head_hidden`` entry added for one head leaves the other heads' rows valid); the
    settings only cross_attention reads (:data:`CROSS_ATTENTION_ONLY`) must match for its
    rows alone."""
    return rows_trained_like(json.loads(path.read_text()), config) if path.exists() else []


def rows_trained_like(payload: dict, config: dict) -> list[dict]:
    """The rows of a results file's ``payload`` trained as ``config`` trains (what
    :func:`previous_rows` keeps of the file it reads)."""
    earlier = payload.get("config", {})

    def training(values: dict, skipped: tuple[str, ...]) -> dict:
        return {k: v for k, v in training_config(values).items() if k not in skipped}

    # whether the two configs match, for cross_attention's rows and for the other heads' rows
    matches = {
        is_cross_attention: training(earlier, skipped) == training(config, skipped)
        for is_cross_attention, skipped in ((True, tuple(PER_HEAD)), (False, (*PER_HEAD, *CROSS_ATTENTION_ONLY)))
    }
    return [
        r
        for r in payload["results"]
        if matches[r["head"] == "cross_attention"]
        and all(per_head(r["head"], earlier, table) == per_head(r["head"], config, table) for table in PER_HEAD)
    ]


def _run_in_children(runs: list[tuple[str, int]], config: dict, args, device: torch.device) -> list[dict]:
    """Each (head, seed) in a child process, ``config["jobs"]`` at a time, each under a timeout."""
    threads = max(1, (os.cpu_count() or 1) // config["jobs"]) if device.type == "cpu" else 1
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}

    def one(run: tuple[str, int]) -> dict:
        head, seed = run
        with tempfile.TemporaryDirectory() as tmp:
            part = Path(tmp) / "rows.json"
            spec = json.dumps({"head": head, "seed": seed, "config": config, "device": str(device), "part": str(part)})
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--worker", spec],
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=args.run_timeout,
                )
            except subprocess.TimeoutExpired:
                return {
                    "measurement": "training",
                    "head": head,
                    "seed": seed,
                    "error": f"timed out after {args.run_timeout:.0f} s",
                }
            if done.returncode != 0 or not part.exists():
                last = (done.stderr.strip().splitlines() or ["no output"])[-1]
                return {
                    "measurement": "training",
                    "head": head,
                    "seed": seed,
                    "error": f"exit {done.returncode}: {last[:300]}",
                }
            return json.loads(part.read_text())

    with ThreadPoolExecutor(max_workers=config["jobs"]) as pool:
        rows = []
        for row in pool.map(one, runs):
            print(json.dumps({k: v for k, v in row.items() if k not in ("val_curve", "acc_by_family")}), flush=True)
            rows.append(row)
    return rows


def _worker(spec: str) -> int:
    spec = json.loads(spec)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    row = train_head(spec["head"], spec["seed"], spec["config"], torch.device(spec["device"]))
    Path(spec["part"]).write_text(json.dumps(row))
    return 0


def finish_summary(rows: list[dict], throughput: dict | None, kind: str) -> dict:
    """The summary of ``rows`` with the verdict on each of ``kind``'s targets."""
    summary = summarize(rows, throughput)
    summary["targets"] = check_targets(summary, kind)
    summary["targets_met"] = all(verdict["met"] for verdict in summary["targets"].values())
    return summary


def target_kind(device: torch.device | str) -> str:
    """Whose targets apply: ``"gpu"`` for a CUDA device, or for a results file whose
    ``device`` label a GPU wrote; ``"cpu"`` otherwise."""
    if isinstance(device, torch.device):
        return "gpu" if device.type == "cuda" else "cpu"
    return "cpu" if device.startswith("cpu") else "gpu"


def _read_results(path: Path, flag: str) -> dict | None:
    """The results file a ``flag`` (``--summarize-only``, ...) rewrites; None, said, if absent."""
    if not path.exists():
        print(f"error: {flag}: no results file at {path}", file=sys.stderr)
        return None
    return json.loads(path.read_text())


def rows_to_merge(files: list[str], config: dict, device) -> list[dict]:
    """The training rows of ``files`` (results of runs made apart, for ``--merge``): each file
    from this kind of device and processor, every row trained under ``config`` (the flags
    given), no head and seed in two files. Anything else is a one-line ``ValueError``."""
    machine = (device_label(device), processor_name())
    rows, source = [], {}
    for file in files:
        path = Path(file)
        if not path.is_file():
            raise ValueError(f"--merge: {file}: no such file, expected a {NAME} results file")
        payload = json.loads(path.read_text())
        if payload.get("name") != NAME:
            raise ValueError(f"--merge: {file} holds {payload.get('name')!r} results, expected {NAME!r}")
        if (payload.get("device"), payload.get("processor")) != machine:
            raise ValueError(
                f"--merge: {file} was measured on {payload.get('device')} ({payload.get('processor')}), "
                f"this run is on {machine[0]} ({machine[1]}): rows from another machine do not merge"
            )
        training = [r for r in payload["results"] if r.get("measurement") == "training" and "error" not in r]
        kept = [r for r in rows_trained_like(payload, config) if r in training]
        if len(kept) < len(training):
            raise ValueError(
                f"--merge: {len(training) - len(kept)} of the {len(training)} rows of {file} were trained "
                "under another config than these flags give: pass the flags those runs were made with"
            )
        for row in kept:
            key = (row["head"], row["seed"])
            if key in source:
                raise ValueError(f"--merge: {row['head']} seed {row['seed']} is in both {source[key]} and {file}")
            source[key] = file
            rows.append(row)
    return rows


def resummarize(path: Path) -> int:
    """Rewrite the summary of an existing results file from its rows (after the summary's
    keys or the targets changed); everything else in the file stays as it was."""
    payload = _read_results(path, "--summarize-only")
    if payload is None:
        return 2
    rows = payload["results"]
    best = summarize(rows, None)["best_head"]
    throughput = next((r for r in rows if r.get("measurement") == "throughput" and r["head"] == best), None)
    payload["summary"] = finish_summary(rows, throughput, target_kind(payload["device"]))
    atomic_write_json(path, payload)
    print(f"rewrote the summary of {path}")
    return 0


def measure_throughput_only(path: Path, device: torch.device) -> int:
    """Measure the throughput of the best head of an existing results file, under that
    file's config, on this device (the file is this device's: its name says so); the new
    row replaces any earlier throughput row and the summary is recomputed."""
    payload = _read_results(path, "--throughput-only")
    if payload is None:
        return 2
    rows = [r for r in payload["results"] if r.get("measurement") != "throughput"]
    best = summarize(rows, None)["best_head"]
    if best is None:
        print(f"error: --throughput-only: {path} holds no attention head to measure", file=sys.stderr)
        return 2

    def keep(row_so_far: dict) -> None:  # after each mode: a timeout later loses only the rest
        atomic_write_json(path, {**payload, "results": rows + [row_so_far]})

    measured = throughput_rows(best, payload["config"], device, on_mode=keep)
    payload["results"] = rows + [measured]
    payload["summary"] = finish_summary(payload["results"], measured, target_kind(device))
    atomic_write_json(path, payload)
    print(json.dumps({k: v for k, v in measured.items() if k != "profile_fp32"}))
    print(f"added {best}'s throughput to {path}")
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return _worker(args.worker)
    try:  # before minutes of measuring: refuse an --out folder the benchmarks did not make
        device = pick_device(args.device)
        if not (args.summarize_only or args.throughput_only):  # these rewrite a file that is there
            prepare_output_folder(args.out, "benchmarks")
    except (OutputFolderError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if args.summarize_only or args.throughput_only:
        path = results_path(NAME, device, args.out)
        with results_lock(path):  # a run writing to the same file waits, and keeps these rows
            return resummarize(path) if args.summarize_only else measure_throughput_only(path, device)
    config = build_config(args, device)
    try:  # a combination of options no model can have fails now, not in every child
        for head in args.heads:
            model_config(head, config, SimpleNamespace(answers=[0, 1], tokenizer=[0, 1], pad_token_id=0))
    except (ValueError, TypeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    if args.merge:
        try:
            rows = rows_to_merge(args.merge, config, device)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        path = results_path(NAME, device, args.out)
        with results_lock(path):  # merged rows replace rows of the same head and seed already there
            return _merge_and_write(
                path, rows, config, SimpleNamespace(**{**vars(args), "throughput": "none"}), device, started
            )
    print(f"{device_label(device)}: {config}", flush=True)
    runs = [
        (head, seed)
        for head in args.heads
        for seed in range(config["seed_offset"], config["seed_offset"] + config["seeds"])
    ]
    if config["jobs"] == 1:
        rows = []
        for head, seed in runs:
            rows.append(train_head(head, seed, config, device))
            print(
                json.dumps({k: v for k, v in rows[-1].items() if k not in ("val_curve", "acc_by_family")}), flush=True
            )
    else:
        rows = _run_in_children(runs, config, args, device)
    path = results_path(NAME, device, args.out)
    with results_lock(path):  # another run into this --out reads and rewrites the file after this one
        return _merge_and_write(path, rows, config, args, device, started)


def _merge_and_write(path: Path, rows: list[dict], config: dict, args, device, started: float) -> int:
    """Add the rows of earlier runs in ``path`` (same training config, other head/seed
    pairs), measure throughput if asked, summarize and write; the caller holds the lock."""
    done = {(r["head"], r["seed"]) for r in rows}
    kept = [
        r
        for r in previous_rows(path, config)
        if r.get("measurement") == "training" and (r["head"], r["seed"]) not in done and "error" not in r
    ]
    rows = sorted(kept + rows, key=lambda r: (list(HEADS).index(r["head"]), r["seed"]))
    summary = finish_summary(rows, None, target_kind(device))
    if args.throughput != "none" and summary["best_head"]:
        # the training rows first, then each throughput mode as it is measured (as
        # --throughput-only does): a timeout while measuring loses only what was left
        write_results(NAME, device, config, rows, summary, folder=args.out)
        measured: list[dict] = []

        def keep(row_so_far: dict) -> None:
            write_results(NAME, device, config, rows + measured + [row_so_far], summary, folder=args.out)

        heads = [summary["best_head"]] if args.throughput == "best" else list(dict.fromkeys(r["head"] for r in rows))
        for head in heads:  # one at a time: nothing shares the device
            measured.append(throughput_rows(head, config, device, on_mode=keep))
        rows += measured
        throughput = next(r for r in measured if r["head"] == summary["best_head"])
        summary = finish_summary(rows, throughput, target_kind(device))
    missed = []
    for key, verdict in summary["targets"].items():
        if not verdict["met"]:
            blockers = target_blockers(summary, key)
            missed.append(
                f"{key} = {verdict['value']} (target {verdict['target']}{f'; {blockers}' if blockers else ''})"
            )
    write = write_results(NAME, device, config, rows, summary, folder=args.out)
    print(json.dumps(summary, indent=2))
    print(f"wrote {write} in {time.perf_counter() - started:.0f}s")
    print("every target met" if not missed else "targets not met: " + "; ".join(missed))
    return 0 if summary["failed_runs"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
