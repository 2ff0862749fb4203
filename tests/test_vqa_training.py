"""train_vqa's bookkeeping: one history over the curriculum and the main phase."""

import pytest

from mmtutorial.data import SortOfClevr
from mmtutorial.models.vqa import VQAConfig, VQAModel
from mmtutorial.models.vqa_training import train_vqa
from mmtutorial.training import seed_everything

SIZES = {"n_train": 40, "n_val": 10, "n_test": 4, "seed": 5}


@pytest.fixture(scope="module")
def data():
    return SortOfClevr("train", tokenizer="words", **SIZES), SortOfClevr("val", tokenizer="words", **SIZES)


def _model(train: SortOfClevr) -> VQAModel:
    return VQAModel(
        VQAConfig(
            head="film",
            vocab_size=len(train.tokenizer),
            pad_id=train.pad_token_id,
            dim=16,
            hidden=16,
            cnn_channels=8,
            heads=2,
        )
    )


@pytest.mark.parametrize("curriculum_epochs", [0, 2])
def test_epochs_are_numbered_through_both_phases_and_the_best_epoch_is_chosen_over_all(data, curriculum_epochs):
    train, val = data
    generator = seed_everything(0)
    history = train_vqa(
        _model(train),
        train,
        val,
        images_per_batch=8,
        epochs=3,
        curriculum_epochs=curriculum_epochs,
        lr=3e-3,
        generator=generator,
        progress=False,
    )
    assert history.column("epoch") == list(range(1, curriculum_epochs + 4))
    losses = history.column("val_loss")
    assert history.best_epoch == 1 + losses.index(min(losses))
