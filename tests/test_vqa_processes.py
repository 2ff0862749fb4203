"""train_in_processes: runs trained side by side in spawned children come back exactly as
if trained here, by name, in eval mode; bad runs get one-line errors, failed ones name
the run."""

import pytest
import torch

from mmtutorial.data import SortOfClevr
from mmtutorial.models.vqa import VQAConfig
from mmtutorial.models.vqa_processes import TrainedVQA, VQARun, train_in_processes, train_one

DATA = {"n_train": 24, "n_val": 8, "n_test": 0, "data_seed": 3, "tokenizer": "words"}
TRAINING = {"curriculum_epochs": 1, "epochs": 1, "images_per_batch": 8, "lr": 2e-3}


def _config(head: str) -> VQAConfig:
    train = SortOfClevr("train", **DATA)
    return VQAConfig(
        head=head,
        vocab_size=len(train.tokenizer),
        pad_id=train.pad_token_id,
        num_answers=len(train.answers),
        dim=16,
        hidden=16,
    )


def _runs() -> dict[str, VQARun]:
    return {
        "concat": VQARun(_config("concat"), seed=1, data=DATA, training=TRAINING),
        "cross_attention": VQARun(_config("cross_attention"), seed=1, data=DATA, training=TRAINING),
    }


@pytest.fixture(scope="module")
def trained() -> dict[str, TrainedVQA]:
    return train_in_processes(_runs())


def test_children_train_exactly_as_this_process_would(trained):
    torch.set_num_threads(1)  # as the children: one thread each
    for name, run in _runs().items():
        weights, history, _ = train_one(run)
        child = trained[name]
        assert not child.model.training
        assert child.model.config == run.config
        state = child.model.state_dict()
        assert state.keys() == weights.keys()
        assert all(torch.equal(state[key], weights[key]) for key in weights), name
        assert child.history.best_epoch == history.best_epoch
        assert [row["val_acc"] for row in child.history.epochs] == [row["val_acc"] for row in history.epochs]
        assert child.seconds > 0


def test_different_seeds_give_different_weights(trained):
    run = _runs()["concat"]
    other, _, _ = train_one(VQARun(run.config, seed=2, data=DATA, training=TRAINING))
    assert not all(torch.equal(other[k], v) for k, v in trained["concat"].model.state_dict().items())


def test_a_failing_run_is_named():
    runs = {"broken": VQARun(_config("concat"), seed=0, data=DATA, training={**TRAINING, "lr": -1.0})}
    with pytest.raises(RuntimeError, match=r"run 'broken' failed: ValueError: lr=-1.0: expected a finite number > 0"):
        train_in_processes(runs)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: train_in_processes({}), ValueError, r"runs=\{\}: expected a non-empty mapping"),
        (lambda: train_in_processes({"a": 3}), TypeError, r"runs\['a'\]=int: expected a VQARun"),
        (lambda: train_in_processes(_runs(), threads=0), ValueError, "threads"),
        (lambda: train_in_processes(_runs(), max_workers=0), ValueError, "max_workers"),
        (lambda: VQARun({"head": "concat"}, seed=0), TypeError, "config=dict: expected a VQAConfig"),
        (lambda: VQARun(_config("concat"), seed=-1), ValueError, r"seed=-1: expected a non-negative int"),
        (lambda: VQARun(_config("concat"), seed=True), ValueError, r"seed=True"),
        (
            lambda: VQARun(_config("concat"), seed=0, training={"progress": True}),
            ValueError,
            r"training sets \['progress'\]: the run sets these itself",
        ),
        (lambda: VQARun(_config("concat"), seed=0, data={"split": "test"}), ValueError, "data sets 'split'"),
    ],
)
def test_bad_runs_get_one_line_errors(make, error, message):
    with pytest.raises(error, match=message) as raised:
        make()
    assert "\n" not in str(raised.value)
