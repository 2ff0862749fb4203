"""Data-parallel VQA training: sharding global batches, and 2 gloo processes under torchrun
taking the same steps as one process over the same global batches."""

import os
import subprocess
import sys

import pytest
import torch

from mmtutorial.data import SortOfClevr
from mmtutorial.models.train_vqa import main as train_main
from mmtutorial.models.vqa import load_vqa_checkpoint
from mmtutorial.training.distributed import (
    DistributedContext,
    ShardedBatches,
    all_reduce_mean,
    shard_batch,
)

SIZES = {"n_train": 8, "n_val": 4, "n_test": 4, "data_seed": 5}


def test_image_shards_cover_the_global_batch_exactly_once():
    ds = SortOfClevr("train", tokenizer="words", **SIZES)
    batch = next(iter(ds.batches(5, by_image=True)))
    shards = [shard_batch(batch, rank, 2) for rank in range(2)]
    assert [len(s["images"]) for s in shards] == [3, 2]
    for shard in shards:
        assert shard["image_row"].max() < len(shard["images"])
        # every question still points at its own image
        assert torch.equal(
            shard["images"][shard["image_row"]],
            batch["images"][batch["image_row"][torch.isin(batch["index"], shard["index"])]],
        )
    assert torch.equal(torch.cat([s["index"] for s in shards]).sort().values, batch["index"].sort().values)


def test_row_shards_and_single_process_passthrough():
    batch = {"x": torch.arange(7), "y": torch.arange(7) * 2}
    parts = [shard_batch(batch, r, 3) for r in range(3)]
    assert [p["x"].tolist() for p in parts] == [[0, 1, 2], [3, 4], [5, 6]]
    assert shard_batch(batch, 0, 1)["x"].tolist() == list(range(7))
    single = DistributedContext()
    assert not single.distributed and single.is_main
    assert all_reduce_mean(0.25, single) == 0.25
    assert len(ShardedBatches([batch, batch], single)) == 2


TINY = [
    "--n-train",
    "8",
    "--n-val",
    "4",
    "--n-test",
    "4",
    "--images-per-batch",
    "4",
    "--epochs",
    "2",
    "--curriculum-epochs",
    "1",
    "--cnn-norm",
    "group",
    "--dim",
    "16",
    "--hidden",
    "16",
    "--seed",
    "3",
    "--device",
    "cpu",
    "--deterministic",
    "--no-progress",
]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_over_the_same_global_batch(tmp_path):
    """Also with a weight average, which each rank keeps of the module under DDP."""
    single, double = tmp_path / "single.pt", tmp_path / "ddp.pt"
    averaged = ["--ema-decay", "0.9"]
    assert train_main([*TINY, *averaged, "--checkpoint", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    launched = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "mmtutorial.models.train_vqa",
            *TINY,
            *averaged,
            "--checkpoint",
            str(double),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert launched.returncode == 0, launched.stderr[-3000:]
    one, one_info = load_vqa_checkpoint(single)
    two, two_info = load_vqa_checkpoint(double)  # a distributed run's checkpoint loads in one process
    assert two_info["metrics"]["world_size"] == 2 and one_info["metrics"]["world_size"] == 1
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")
    assert abs(one_info["metrics"]["final_train_loss"] - two_info["metrics"]["final_train_loss"]) < 1e-4


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_meeting_at_one_rendezvous_match_one_process(tmp_path):
    """Multi-node training as the README runs it (`torchrun --nnodes N --rdzv-backend c10d
    --rdzv-endpoint HOST:PORT`), here as two "nodes" on one machine: two torchrun launches
    of one gloo process each meet at one c10d rendezvous and end with one process's weights."""
    single, double = tmp_path / "single.pt", tmp_path / "nodes.pt"
    assert train_main([*TINY, "--checkpoint", str(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    endpoint = f"127.0.0.1:{_free_port()}"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "2",
        "--nproc_per_node",
        "1",
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        endpoint,
        "--rdzv-id",
        "mmtutorial-test",
        "-m",
        "mmtutorial.models.train_vqa",
        *TINY,
        "--checkpoint",
        str(double),
    ]
    nodes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)
    ]
    outputs = [node.communicate(timeout=600) for node in nodes]
    for node, (_, stderr) in zip(nodes, outputs, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    one, _ = load_vqa_checkpoint(single)
    two, two_info = load_vqa_checkpoint(double)
    assert two_info["metrics"]["world_size"] == 2
    for (name, a), b in zip(one.state_dict().items(), two.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4, msg=lambda m, name=name: f"{name}: {m}")


def test_a_torchrun_worker_exits_with_its_status_and_its_output_flushed():
    """``exit_process`` skips the interpreter's teardown (where gloo's threads could abort the
    process) but keeps the exit code and everything printed, even without a newline."""
    script = "from mmtutorial.training.distributed import exit_process\nprint('saved', end='')\nexit_process(3)"
    ended = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert (ended.returncode, ended.stdout) == (3, "saved")


def test_the_distance_hop_options_reach_the_model(tmp_path):
    """The command line trains notebook 09's setting: the options land in the saved config."""
    checkpoint = tmp_path / "hop.pt"
    hop = ["--distance-bias-scale", "4", "--distance-positions", "learned", "--distance-bias-exclude", "8"]
    hop += ["--distance-bias-avoid", "radius", "--relate-hop", "all"]
    waits = ["--hold-distance-bias", "--relational-first-hop-delay", "1"]
    assert train_main([*TINY, *hop, *waits, "--checkpoint", str(checkpoint)]) == 0
    _, info = load_vqa_checkpoint(checkpoint)
    config = info["config"]
    assert (config["distance_bias_scale"], config["distance_positions"], config["distance_bias_exclude"]) == (
        4.0,
        "learned",
        8.0,
    )
    assert (config["distance_bias_avoid"], config["relate_hop"]) == ("radius", "all")


def test_the_training_cli_passes_the_heads_own_learning_rate(monkeypatch, tmp_path):
    """``--head-lr`` reaches train_vqa as ``head_lr`` (the encoders keep ``--lr``); by default
    it is None: one rate for the whole model."""
    import mmtutorial.models.train_vqa as cli

    seen = []

    def train_vqa(model, train, val, **options):
        seen.append((options["lr"], options["head_lr"]))
        raise RuntimeError("stop after the call")

    monkeypatch.setattr(cli, "train_vqa", train_vqa)
    for extra in (["--head-lr", "5e-4"], []):
        with pytest.raises(RuntimeError, match="stop after the call"):
            train_main([*TINY, "--head", "transformer", "--lr", "2e-3", *extra, "--checkpoint", str(tmp_path / "x.pt")])
    assert seen == [(2e-3, 5e-4), (2e-3, None)]
