"""How long one interaction with each notebook explorer takes: the recompute, the redraw
and the PNG sent to the browser, i.e. what a learner waits for after moving a control.

Each explorer is built as its notebook builds it (untrained models of the notebook's size:
the cost of an update does not depend on the weights), its widget is created, and its
controls are moved the way a learner would, ``--rounds`` times over. The target of
issue 19 is an update under 0.2 s on a 2-core CPU.

    python benchmarks/explorer_updates.py

Writes benchmarks/results/explorer_updates-<device>.json (the format in ARCHITECTURE.md).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mmtutorial.cli import ArgumentParser, positive_float, positive_int  # noqa: E402
from mmtutorial.outputs import prepare_output_folder  # noqa: E402
from mmtutorial.training.benchmarking import device_label, write_results  # noqa: E402

NAME = "explorer_updates"


def build_explorers() -> dict:
    """``{name: (explorer, [settings, ...])}``: each explorer and the moves a learner makes."""
    from mmtutorial.course.explorers import (
        explore_missing_modalities,
        explore_scaling,
        explore_soft_lookup,
        explore_sparse_patterns,
        explore_vqa,
    )
    from mmtutorial.data import AVDigits, SortOfClevr
    from mmtutorial.models import AVFusionClassifier
    from mmtutorial.models.vqa import VQAConfig, VQAModel

    torch.manual_seed(0)
    keys, values = torch.linspace(0, 5, 40), torch.sin(torch.linspace(0, 5, 40))
    av_train, av_test = AVDigits("train", n_train=200), AVDigits("test")
    av_models = {name: AVFusionClassifier(name).eval() for name in ("early", "late", "gated")}
    soc = SortOfClevr("test", tokenizer="words", n_train=50, n_val=10, n_test=50)
    config = VQAConfig(
        head="cross_attention", vocab_size=len(soc.tokenizer), pad_id=soc.pad_token_id, dim=64, hidden=64
    )
    vqa = VQAModel(config).eval()
    return {
        "01 soft lookup": (
            explore_soft_lookup(keys, values),
            [{"temperature": t} for t in (0.1, 1.0, 10.0)]
            + [{"top_k": k} for k in (1, 3, len(keys))]
            + [{"query": 3.3}],
        ),
        "02 scaling": (explore_scaling(), [{"scaled": s} for s in (True, False)] + [{"dim": d} for d in (2, 64)]),
        "05 sparse patterns": (
            explore_sparse_patterns(window=4, num_global=2),
            [{"window": 16}, {"pattern": "global + local"}, {"num_global": 5}, {"pattern": "block-sparse"}],
        ),
        "08 missing modalities": (
            explore_missing_modalities(av_models, av_test, av_train.audio_statistics()),
            [{"audio_present": False}, {"audio_present": True}, {"image_noise": 0.5}, {"snr_db": -20.0}, {"index": 5}],
        ),
        "06/09 vqa": (
            explore_vqa(vqa, soc),
            [{"question": "What shape is the blue thing?"}, {"image": 3}, {"question": soc.text(7)}],
        ),
    }


def main(argv=None) -> int:
    parser = ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=positive_int, default=3, help="times every move is made")
    parser.add_argument("--target-seconds", type=positive_float, default=0.2)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = parser.parse_args(argv)
    try:
        prepare_output_folder(args.out, "benchmarks")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    os.environ.pop("MMTUTORIAL_STATIC_WIDGETS", None)  # the live widget, as in JupyterLab
    load_at_start = os.getloadavg()[0]
    results = []
    for name, (explorer, moves) in build_explorers().items():
        explorer.widget()  # built once; every update then also encodes the PNG it sends
        seconds = []
        for _ in range(args.rounds):
            for move in moves:
                explorer.set(**move)
                seconds.append(explorer.last_update_seconds)
        row = {
            "explorer": name,
            "updates": len(seconds),
            "median_seconds": statistics.median(seconds),
            "max_seconds": max(seconds),
        }
        print(f"{name:22s} median {row['median_seconds']:.3f} s   max {row['max_seconds']:.3f} s", flush=True)
        results.append(row)
    slowest = max(results, key=lambda r: r["max_seconds"])
    summary = {
        "slowest_explorer": slowest["explorer"],
        "max_update_seconds": slowest["max_seconds"],
        "max_median_update_seconds": max(r["median_seconds"] for r in results),
        "target_seconds": args.target_seconds,
        "target_met": slowest["max_seconds"] <= args.target_seconds,
    }
    # other work on the machine slows every update: record how busy it was
    config = {"rounds": args.rounds, "torch_threads": torch.get_num_threads(), "load_average_1min": load_at_start}
    path = write_results(NAME, torch.device("cpu"), config, results, summary, folder=args.out)
    print(
        f"{device_label('cpu')}: slowest update {summary['max_update_seconds']:.3f} s ({slowest['explorer']}); wrote {path}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
