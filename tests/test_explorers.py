"""The notebooks' interactive explorers, without a browser: each one is built, its controls
are moved (widget values set, buttons clicked: the same observers JupyterLab calls), and
what it draws and reports must follow. Also the static fallback of headless runs.

Update times are measured (``last_update_seconds``) but never asserted: the machine's load
decides them, not the code."""

import math

import nbformat
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mmtutorial.attention import BlockSparse, GlobalLocal, SlidingWindow
from mmtutorial.course import explorers
from mmtutorial.course.explorers import (
    STATIC_WIDGETS_ENV,
    explore_missing_modalities,
    explore_scaling,
    explore_soft_lookup,
    explore_sparse_patterns,
    explore_vqa,
)
from mmtutorial.course.explorers.sparse import block_skipping_attention, kept_blocks
from mmtutorial.course.explorers.vqa import parse_question
from mmtutorial.data import AVDigits, SortOfClevr
from mmtutorial.data.sort_of_clevr import COLORS, TEMPLATES, question_text
from mmtutorial.models import AVFusionClassifier
from mmtutorial.models.vqa import VQAConfig, VQAModel, save_vqa_checkpoint

KEYS = torch.tensor([0.0, 1.0, 2.0, 3.0, 4.0])
VALUES = torch.tensor([0.0, 2.0, 1.0, 3.0, 0.5])


def heights(bars) -> list[float]:
    return [bar.get_height() for bar in bars]


def widths(bars) -> list[float]:
    return [bar.get_width() for bar in bars]


@pytest.fixture
def live(monkeypatch):
    """JupyterLab's setting: no static switch."""
    monkeypatch.delenv(STATIC_WIDGETS_ENV, raising=False)


# ---------------------------------------------------------------------------------
# The switch: a widget where a person can move it, a static figure everywhere else
# ---------------------------------------------------------------------------------


def _displayed(explorer, monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **_: shown.extend(objects))
    explorer._ipython_display_()
    return shown, capsys.readouterr().out


def test_headless_runs_display_a_static_figure_and_no_widget(monkeypatch, capsys):
    import IPython.display

    monkeypatch.setenv(STATIC_WIDGETS_ENV, "1")
    explorer = explore_soft_lookup(KEYS, VALUES)
    shown, printed = _displayed(explorer, monkeypatch, capsys)
    assert len(shown) == 1 and isinstance(shown[0], IPython.display.Image)
    assert shown[0].data.startswith(b"\x89PNG") and shown[0].format == "png"
    assert explorer._widget is None, "a headless run must not build a widget"
    assert "query 2.40" in printed and "JupyterLab" in printed


def test_jupyterlab_gets_the_live_widget(live, monkeypatch, capsys):
    import ipywidgets

    explorer = explore_soft_lookup(KEYS, VALUES)
    shown, _ = _displayed(explorer, monkeypatch, capsys)
    assert len(shown) == 1 and isinstance(shown[0], ipywidgets.VBox)
    assert "mmtutorial-explorer" in shown[0]._dom_classes
    image = shown[0].children[-1]
    assert isinstance(image, ipywidgets.Image) and bytes(image.value).startswith(b"\x89PNG")


@pytest.mark.slow
def test_the_notebook_runner_sets_the_static_switch(tmp_path):
    """A headless run through mmtutorial.experiments shows the figure as a PNG output."""
    from mmtutorial.experiments import execute_notebook

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    parameters = nbformat.v4.new_code_cell("smoke = False")
    parameters.metadata["tags"] = ["parameters"]
    call = nbformat.v4.new_code_cell(
        "from mmtutorial.course.explorers import explore_soft_lookup\nexplore_soft_lookup([0.0, 1.0, 2.0], [1.0, 0.0, 2.0])"
    )
    metrics = nbformat.v4.new_code_cell(
        "from mmtutorial.course.notebook import record_metrics\nrecord_metrics({'shown': True})"
    )
    notebook.cells = [parameters, call, metrics]
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    result = execute_notebook(tmp_path / "explorer.ipynb", tmp_path / "out" / "explorer.ipynb")
    assert result.status == "ok", result.error
    outputs = nbformat.read(result.output, as_version=4).cells[1].outputs
    kinds = [key for output in outputs for key in output.get("data", {})]
    assert "image/png" in kinds and "application/vnd.jupyter.widget-view+json" not in kinds


def test_every_explorer_is_exported_and_documented():
    for name in explorers.__all__:
        assert getattr(explorers, name).__doc__, name
    assert all(f"{name}" in explorers.__doc__ for name in explorers.__all__ if name.startswith("explore_"))


def test_an_unknown_setting_is_refused_with_the_settings_named():
    with pytest.raises(KeyError, match=r"no setting \['temperture'\]; its settings are"):
        explore_soft_lookup(KEYS, VALUES).set(temperture=0.1)


# ---------------------------------------------------------------------------------
# 01: temperature and top-k over a fixed set of keys
# ---------------------------------------------------------------------------------


def test_soft_lookup_weights_and_output_follow_temperature_top_k_and_query(live):
    explorer = explore_soft_lookup(KEYS, VALUES, query=2.4)
    explorer.widget()
    controls = explorer.controls

    def expected(query, temperature):
        return torch.softmax(-((query - KEYS) ** 2) / 2 / temperature, 0)

    assert heights(explorer.bars) == pytest.approx(expected(2.4, 1.0).tolist(), abs=1e-6)
    before, png = max(heights(explorer.bars)), explorer._image.value
    controls["temperature"].value = 0.1  # colder: sharper
    assert heights(explorer.bars) == pytest.approx(expected(2.4, 0.1).tolist(), abs=1e-6)
    assert max(heights(explorer.bars)) > before
    assert explorer._image.value != png, "the widget's image is redrawn"
    assert "T = 0.1" in explorer.status and "T = 0.1" in explorer._status.value
    controls["temperature"].value = 100.0  # hot: nearly uniform
    assert max(heights(explorer.bars)) - min(heights(explorer.bars)) < 0.05
    controls["top_k"].value = 1  # hard attention: the nearest key takes everything
    assert heights(explorer.bars) == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert explorer.output() == pytest.approx(1.0)
    controls["top_k"].value = 2
    assert sum(h > 0 for h in heights(explorer.bars)) == 2 and sum(heights(explorer.bars)) == pytest.approx(1.0)
    controls["query"].value = 3.1
    assert explorer.marker.get_offsets()[0][0] == pytest.approx(3.1)
    assert list(explorer.query_line.get_xdata()) == pytest.approx([3.1, 3.1])
    curve = explorer.curve.get_ydata()
    assert len(curve) == len(explorer.queries) and np.isfinite(curve).all()
    assert explorer.last_update_seconds > 0


@pytest.mark.parametrize(
    ("arguments", "error"),
    [
        ({"keys": [1.0], "values": [1.0]}, "same length >= 2"),
        ({"keys": [1.0, 2.0], "values": [1.0]}, "same length >= 2"),
        ({"keys": KEYS, "values": VALUES, "temperature": 0.0}, "temperature=0.0: expected a finite number > 0"),
        ({"keys": KEYS, "values": VALUES, "top_k": 9}, "top_k=9: expected an int >= 1 and <= 5"),
    ],
)
def test_soft_lookup_rejects_bad_settings(arguments, error):
    with pytest.raises((TypeError, ValueError), match=error):
        explore_soft_lookup(**arguments)


# ---------------------------------------------------------------------------------
# 02: query/key size and scaling
# ---------------------------------------------------------------------------------


def test_scaling_shows_the_unscaled_softmax_saturating_and_the_scaled_one_not(live):
    explorer = explore_scaling(dims=(2, 64, 1024), samples=128, dim=2, scaled=False)
    explorer.widget()
    small = explorer.statistics()["mean max weight"]
    explorer.controls["dim"].value = 1024
    unscaled = explorer.statistics()
    assert unscaled["mean max weight"] > 0.8 > small, "unscaled dot products saturate as d grows"
    assert 0.7 < unscaled["score variance"] / 1024 < 1.3, "the variance of q.k is d"
    assert max(heights(explorer.bars)) == pytest.approx(unscaled["mean max weight"], abs=1e-6)
    assert sum(heights(explorer.bars)) == pytest.approx(1.0, abs=1e-5)
    assert explorer.marker.get_data()[0][0] == 1024
    explorer.controls["scaled"].value = True
    scaled = explorer.statistics()
    assert scaled["mean max weight"] < 0.5 and 0.7 < scaled["score variance"] < 1.3
    assert scaled["mean |grad| on scores"] > 3 * unscaled["mean |grad| on scores"]
    assert "scaled" in explorer.status and "d = 1024" in explorer.status


def test_scaling_only_offers_the_measured_sizes():
    with pytest.raises(ValueError, match=r"dim=3: expected one of \(2, 64\)"):
        explore_scaling(dims=(2, 64), dim=3)


# ---------------------------------------------------------------------------------
# 05: sparse patterns, their mask and cost
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern", [SlidingWindow(3), GlobalLocal(16, 2), BlockSparse(8, 1, 3), BlockSparse(64, 2, 2)])
def test_computing_only_the_kept_blocks_gives_the_dense_masks_result(pattern):
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 300, 16, generator=generator) for _ in range(3))  # 300: not a multiple of 128
    mask = pattern.dense_mask(300)
    reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert (block_skipping_attention(q, k, v, mask) - reference).abs().max() < 1e-5
    assert kept_blocks(mask).shape == (3, 3)


def test_sparse_explorer_draws_the_mask_and_measures_the_cost(live):
    explorer = explore_sparse_patterns(window=4, cost_length=256)
    explorer.widget()
    drawn = explorer.mask_image.get_array()
    assert np.array_equal(np.asarray(drawn), SlidingWindow(4).dense_mask(64).float().numpy())
    assert explorer.costs["scores kept"] == pytest.approx(SlidingWindow(4).density(256))
    assert explorer.controls["num_global"].disabled and not explorer.controls["window"].disabled
    explorer.controls["window"].value = 16
    assert explorer.costs["scores kept"] == pytest.approx(SlidingWindow(16).density(256))
    explorer.controls["pattern"].value = "global + local"
    assert not explorer.controls["num_global"].disabled and explorer.controls["stride"].disabled
    explorer.controls["num_global"].value = 5
    assert np.array_equal(
        np.asarray(explorer.mask_image.get_array()), GlobalLocal(16, 5).dense_mask(64).float().numpy()
    )
    explorer.controls["pattern"].value = "block-sparse"
    explorer.controls["block_size"].value = 16
    explorer.controls["stride"].value = 2
    assert explorer.pattern() == BlockSparse(16, 1, 2)
    assert explorer.controls["window"].disabled
    costs = explorer.costs
    assert set(costs) == {"scores kept", "128-blocks kept", "time: dense mask", "time: kept blocks only"}
    assert all(math.isfinite(v) and v > 0 for v in costs.values())
    bars = widths(explorer.cost_bars)
    assert bars[:2] == pytest.approx([costs["scores kept"], costs["128-blocks kept"]])
    assert set(explorer.times_ms) == {"full", "dense mask", "kept blocks only"}
    explorer.controls["cost_length"].value = 512
    assert "L = 512" in explorer.status


# ---------------------------------------------------------------------------------
# 08: drop or corrupt a modality
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def av_models():
    train = AVDigits("train", n_train=60, n_val=10, n_test=12)
    test = AVDigits("test", n_train=60, n_val=10, n_test=12)
    torch.manual_seed(0)
    models = {name: AVFusionClassifier(fusion).eval() for name, fusion in [("gated", "gated"), ("early", "early")]}
    return models, test, train.audio_statistics()


def test_missing_modality_explorer_follows_the_present_mask_and_the_corruption(live, av_models):
    models, test, stats = av_models
    explorer = explore_missing_modalities(models, test, stats, index=3, image_noise=0.0, occlusion=0.0)
    explorer.widget()
    controls = explorer.controls
    clean = explorer.batch["image"][0, 0].clone()
    label = int(test.labels[3])
    assert explorer.truth.get_xdata()[0] == label and f"digit {label}" in explorer.status
    assert set(explorer.probabilities) == {"gated", "early"} and list(explorer.weights) == ["gated"]
    table = np.asarray(explorer.heatmap.get_array())
    assert table.shape == (2, 10) and np.allclose(table.sum(1), 1.0, atol=1e-5)
    # the models really get what is drawn: the same batch gives the same probabilities
    with torch.no_grad():
        again = torch.softmax(models["early"](explorer.batch), -1)[0]
    assert torch.allclose(again, explorer.probabilities["early"], atol=1e-6)
    controls["audio_present"].value = False
    assert explorer.batch["present"].tolist() == [[True, False]]
    assert explorer.weights["gated"].tolist() == [1.0, 0.0], "the gate renormalises over what is present"
    assert widths(explorer.gate_bars) == [1.0, 0.0]
    controls["audio_present"].value = True
    controls["image_present"].value = False
    assert explorer.weights["gated"].tolist() == [0.0, 1.0]
    assert explorer.image_ax.get_title() == "image\nabsent"
    controls["image_present"].value = True
    controls["occlusion"].value = 0.25  # a square of a quarter of the area, side 14 of 28
    occluded = explorer.batch["image"][0, 0]
    assert ((occluded == 0) & (clean > 0)).sum() > 0 and (occluded <= clean + 1e-6).all()
    controls["occlusion"].value = 0.0
    controls["image_noise"].value = 0.5
    assert (explorer.batch["image"][0, 0] - clean).abs().mean() > 0.05
    quiet = explorer.batch["audio"].clone()
    controls["snr_db"].value = -20.0
    assert (explorer.batch["audio"] - quiet).abs().mean() > 0.1, "more noise changes the spectrogram"
    controls["index"].value = 5
    assert explorer.truth.get_xdata()[0] == int(test.labels[5])


def test_missing_modality_explorer_uses_the_clean_parts_of_the_same_samples(av_models):
    models, test, stats = av_models
    explorer = explore_missing_modalities(models, test, stats, image_noise=0.0, occlusion=0.0, snr_db=60.0)
    # without corruption the image is the split's PCA-reduced image of the same digit
    assert explorer.clean_images.shape == test.images.shape
    nearly_clean = AVDigits("test", n_train=60, n_val=10, n_test=12, image_noise=0.0, occlusion=0.0)
    assert torch.allclose(explorer.clean_images, nearly_clean.images)


# ---------------------------------------------------------------------------------
# 06 and 09: an image, a typed question, the answer and every hop's attention
# ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vqa():
    dataset = SortOfClevr("test", tokenizer="words", use_cache=False, n_train=4, n_val=2, n_test=6, data_seed=3)
    torch.manual_seed(0)
    config = VQAConfig(head="cross_attention", vocab_size=len(dataset.tokenizer), pad_id=dataset.pad_token_id)
    return VQAModel(config).eval(), dataset


def test_every_template_wording_is_recognised():
    for (qtype, subtype), templates in TEMPLATES.items():
        for template in range(len(templates)):
            b = 1 if qtype == 2 else -1
            text = question_text(qtype, subtype, 0, b, template)
            assert parse_question(text.upper(), ternary=True) == (qtype, subtype, 0, b, template), text
    assert parse_question("What shape is the red elephant?") is None


def test_the_true_answer_of_a_typed_question_is_the_data_sets_answer(vqa):
    model, dataset = vqa
    explorer = explore_vqa(model, dataset)
    for row in range(0, len(dataset), 7):
        explorer.set(image=int(dataset.image_index[row]), question=dataset.text(row))
        assert explorer.result["truth"] == dataset.answers[int(dataset.answer[row])], dataset.text(row)
        assert explorer.result["named"] == [int(dataset.color_a[row])]


def test_vqa_explorer_answers_typed_questions_and_draws_every_hop(live, vqa):
    model, dataset = vqa
    explorer = explore_vqa(model, dataset, image=1)
    explorer.widget()
    controls = explorer.controls
    assert explorer.map_names == ["hop1", "hop2"]
    controls["question"].value = "What shape is the blue thing?"
    result = explorer.result
    assert result["answer"] in dataset.answers and result["named"] == [COLORS.index("blue")]
    assert result["probabilities"].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert widths(explorer.answer_bars) == pytest.approx(result["probabilities"].tolist(), abs=1e-6)
    # the model's own maps, for this image and question
    scene = explorer.scene()
    batch = {
        "images": scene["image"][None].float() / 255,
        "image_row": torch.zeros(1, dtype=torch.long),
        "input_ids": torch.tensor(dataset.tokenizer(["What shape is the blue thing?"])["input_ids"]),
    }
    batch["attention_mask"] = torch.ones_like(batch["input_ids"], dtype=torch.bool)
    with torch.no_grad():
        logits, maps = model(batch, return_attention=True)
    for name, overlay in zip(explorer.map_names, explorer.overlays, strict=True):
        assert np.allclose(np.asarray(overlay.get_array()).flatten(), maps[name][0].numpy(), atol=1e-6)
        assert 0.0 <= result["on_named"][name] <= 1.0
    x, y = scene["centers"][COLORS.index("blue")]
    assert all(box.get_visible() and box.get_xy() == (x - 5.5, y - 5.5) for box in explorer.boxes)
    assert "attention on the blue object" in explorer.status
    # a word the model never saw: a message in the widget, not an exception
    controls["question"].value = "Where is the purple elephant?"
    assert explorer.result["answer"] is None and "unknown words 'where', 'purple', 'elephant'" in explorer.status
    assert "unknown words" in explorer._status.value
    # one of the image's own questions, picked from the list
    own = controls["its questions"]
    own.value = own.options[2]
    assert explorer.state["question"] == own.options[2] and explorer.result["truth"] is not None
    # a new scene
    before = explorer.num_images
    controls["new image"].click()
    assert explorer.num_images == before + 1 and explorer.state["image"] == before
    assert controls["image"].max == before and list(own.options) == explorer.questions()
    assert explorer.scene()["image"].shape == (3, 75, 75)
    controls["image"].value = 0
    assert explorer.state["image"] == 0


def test_vqa_explorer_loads_a_checkpoint_the_notebook_saved(vqa, tmp_path):
    model, dataset = vqa
    path = tmp_path / "vqa.pt"
    save_vqa_checkpoint(path, model, dataset.answers, vocabulary=list(dataset.tokenizer.vocab))
    from_file, in_memory = explore_vqa(path, dataset), explore_vqa(model, dataset)
    assert torch.allclose(from_file.result["probabilities"], in_memory.result["probabilities"], atol=1e-6)
    other = SortOfClevr("test", tokenizer="minilm", use_cache=False, n_train=4, n_val=2, n_test=6, data_seed=3)
    with pytest.raises(ValueError, match="vocabulary differs from the data set's tokenizer"):
        explore_vqa(path, other)


class StoresItsMaps(nn.Module):
    """A model in the style of notebook 06: forward(batch) leaves its maps in self.maps."""

    def __init__(self, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.out = nn.Linear(8, 10)
        self.maps = []

    def forward(self, batch):
        question = self.embed(batch["input_ids"]).mean(1)
        self.maps = [torch.softmax(torch.randn(len(question), 25), -1)]
        return self.out(question)


def test_vqa_explorer_reads_maps_a_model_keeps(vqa):
    _, dataset = vqa
    explorer = explore_vqa(StoresItsMaps(len(dataset.tokenizer)), dataset)
    assert explorer.map_names == ["map 1"] and explorer.result["answer"] is not None


def test_vqa_explorer_refuses_what_is_not_a_model():
    with pytest.raises(TypeError, match="expected a trained VQA model"):
        explore_vqa(object(), None)
