"""Sort-of-CLEVR: answers checked independently from the scene graph, rendering,
determinism, cache integrity, splits, text and tokenizers, bad parameters."""

import math
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from mmtutorial.data import sort_of_clevr as soc
from mmtutorial.data.sort_of_clevr import (
    ANSWERS,
    COLOR_RGB,
    COLORS,
    TEMPLATES,
    SortOfClevr,
    SortOfClevrConfig,
    generate_sort_of_clevr,
)
from mmtutorial.data.sort_of_clevr import cache as soc_cache
from mmtutorial.data.sort_of_clevr import config as soc_config

SMALL = {"n_train": 200, "n_val": 40, "n_test": 60, "data_seed": 3}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMTUTORIAL_CACHE", str(tmp_path / "cache"))
    soc.load_sort_of_clevr.cache_clear()
    yield
    soc.load_sort_of_clevr.cache_clear()


def expected_answer(objects, qtype, subtype, a, b, answers):
    """Independent answer from the scene graph: plain Python, no numpy, no generator code."""
    obj = {int(o[0]): (int(o[1]), int(o[2]), int(o[3])) for o in objects}  # colour -> (shape, x, y)
    shape_name = lambda s: "square" if s == 0 else "circle"  # noqa: E731
    ax, ay = obj[a][1], obj[a][2]
    if qtype == 0:
        if subtype == 0:
            return shape_name(obj[a][0])
        if subtype == 1:
            return "yes" if ax < 37.5 else "no"
        return "yes" if ay < 37.5 else "no"
    if qtype == 1:
        dist = {c: math.dist((ax, ay), (x, y)) for c, (_, x, y) in obj.items() if c != a}
        if subtype == 0:
            return shape_name(obj[min(dist, key=dist.get)][0])
        if subtype == 1:
            return shape_name(obj[max(dist, key=dist.get)][0])
        return str(sum(1 for s, _, _ in obj.values() if s == obj[a][0]))
    bx, by = obj[b][1], obj[b][2]
    others = [(x, y) for c, (_, x, y) in obj.items() if c not in (a, b)]
    if subtype == 0:
        n = sum(1 for x, y in others if min(ax, bx) <= x <= max(ax, bx) and min(ay, by) <= y <= max(ay, by))
        return str(n)
    if subtype == 1:

        def segment_distance(x, y):
            length2 = (bx - ax) ** 2 + (by - ay) ** 2
            t = max(0.0, min(1.0, ((x - ax) * (bx - ax) + (y - ay) * (by - ay)) / length2))
            return math.dist((x, y), (ax + t * (bx - ax), ay + t * (by - ay)))

        return "yes" if any(segment_distance(x, y) < 5 for x, y in others) else "no"
    angles = [math.degrees(math.atan2(y - by, x - bx) - math.atan2(ay - by, ax - bx)) % 360 for x, y in others]
    return str(sum(1 for g in angles if 90 < min(g, 360 - g) <= 180))


@pytest.mark.parametrize("ternary", [False, True])
def test_answers_match_independent_check(ternary):
    ds = SortOfClevr("train", tokenizer=None, ternary=ternary, **SMALL)
    assert len(ds) == 200 * (30 if ternary else 20)  # thousands of questions
    for i in range(len(ds)):
        item = ds[i]
        b = int(ds.color_b[i])
        want = expected_answer(item["objects"], item["qtype"], item["subtype"], item["target"], b, ds.answers)
        assert ds.answers[item["answer"]] == want, (i, item["text"], ds.scene(i))


def test_no_ties_for_closest_and_furthest():
    arrays = generate_sort_of_clevr(SortOfClevrConfig(**SMALL))
    for centers in arrays["centers"]:
        d = ((centers[:, None].astype(float) - centers[None]) ** 2).sum(-1)
        for i in range(len(centers)):
            others = np.delete(d[i], i)
            assert (others == others.min()).sum() == 1 and (others == others.max()).sum() == 1


def test_rendering_objects_at_their_centres_without_overlap():
    arrays = generate_sort_of_clevr(SortOfClevrConfig(**SMALL))
    images, centers, shapes = arrays["images"], arrays["centers"], arrays["shapes"]
    assert images.dtype == np.uint8 and images.shape == (300, 3, 75, 75)  # (N, C, H, W)
    area = {0: 100, 1: sum(1 for dx in range(-5, 6) for dy in range(-5, 6) if dx * dx + dy * dy <= 25)}
    for i in range(0, 300, 7):
        painted = np.zeros((75, 75), dtype=int)
        for j, colour in enumerate(COLORS):
            x, y = centers[i, j]
            assert tuple(images[i, :, y, x]) == COLOR_RGB[colour]  # row = y, column = x
            mask = (images[i].transpose(1, 2, 0) == COLOR_RGB[colour]).all(-1)
            assert mask.sum() == area[int(shapes[i, j])], "an object lost pixels: overlap"
            painted += mask
        assert painted.max() == 1
        assert (images[i][:, painted == 0] == 255).all(), "background must be white"
    # the paper's rule: centres at least 10 px apart
    d = np.sqrt(((centers[:, :, None].astype(float) - centers[:, None]) ** 2).sum(-1))
    d[:, range(6), range(6)] = np.inf
    assert d.min() >= 10


def test_deterministic_by_seed():
    one = generate_sort_of_clevr(SortOfClevrConfig(**SMALL))
    two = generate_sort_of_clevr(SortOfClevrConfig(**SMALL))
    other = generate_sort_of_clevr(SortOfClevrConfig(**{**SMALL, "data_seed": 4}))
    for key in one:
        assert one[key].tobytes() == two[key].tobytes(), key
    assert one["images"].tobytes() != other["images"].tobytes()


def test_splits_are_disjoint_and_sized():
    splits = {s: SortOfClevr(s, tokenizer=None, **SMALL) for s in ("train", "val", "test")}
    hashes = {s: {ds.images[i].numpy().tobytes() for i in range(len(ds.images))} for s, ds in splits.items()}
    assert [len(hashes[s]) for s in ("train", "val", "test")] == [200, 40, 60]
    assert not (hashes["train"] & hashes["val"] or hashes["train"] & hashes["test"] or hashes["val"] & hashes["test"])
    assert len(splits["test"]) == 60 * 20


def test_heldout_templates_only_in_heldout_split():
    train = SortOfClevr("train", tokenizer=None, **SMALL)
    heldout = SortOfClevr("test_heldout", tokenizer=None, **SMALL)
    test = SortOfClevr("test", tokenizer=None, **SMALL)
    heldout_texts = {t for key, ts in TEMPLATES.items() for t in ts[-1:]}
    train_templates = {
        TEMPLATES[(int(q), int(s))][int(t)] for q, s, t in zip(train.qtype, train.subtype, train.template, strict=True)
    }
    assert not train_templates & heldout_texts
    assert {
        TEMPLATES[(int(q), int(s))][int(t)]
        for q, s, t in zip(heldout.qtype, heldout.subtype, heldout.template, strict=True)
    } <= heldout_texts
    assert np.array_equal(heldout.answer, test.answer) and heldout.text(0) != test.text(0)
    assert all(len(v) >= 4 for v in TEMPLATES.values()), "several paraphrases per question type"


def test_every_colour_is_asked_about_including_yellow():
    ds = SortOfClevr("train", tokenizer=None, ternary=True, **SMALL)
    for qtype in (0, 1, 2):
        assert set(ds.color_a[ds.qtype == qtype]) == set(range(6))
    assert set(ds.color_b[ds.qtype == 2]) == set(range(6))
    assert (ds.color_a != ds.color_b)[ds.qtype == 2].all()
    assert ds.answers[-1] == "0" and (ds.answer == len(ANSWERS)).any(), "count answers of zero exist"


def test_structured_vectors_follow_the_public_layout():
    ds = SortOfClevr("val", tokenizer=None, **SMALL)
    item = ds[5]
    v = item["structured"]
    assert v.shape == (11,) and v.sum() == 3
    assert v[item["target"]] == 1 and v[6 + item["qtype"]] == 1 and v[8 + item["subtype"]] == 1
    ternary = SortOfClevr("val", tokenizer=None, ternary=True, **SMALL)
    assert ternary[0]["structured"].shape == (18,)


def test_items_collate_and_tokenizers():
    for tokenizer in ("words", "minilm"):
        ds = SortOfClevr("val", tokenizer=tokenizer, **SMALL)
        batch = ds.collate([ds[i] for i in range(8)])
        assert batch["image"].shape == (8, 3, 75, 75) and batch["image"].dtype == torch.float32
        assert 0.0 <= batch["image"].min() and batch["image"].max() <= 1.0
        assert batch["input_ids"].shape == batch["attention_mask"].shape
        assert batch["attention_mask"].dtype == torch.bool and batch["attention_mask"][:, 0].all()
        lengths = batch["attention_mask"].sum(1)
        assert (batch["input_ids"][torch.arange(8), lengths - 1] != ds.pad_token_id).all()
        assert batch["objects"].shape == (8, 6, 4)
    words = SortOfClevr("val", tokenizer="words", **SMALL)
    assert words.tokenizer.unk_token_id not in {i for ids in words._token_ids for i in ids}


def test_as_tensors_matches_items():
    ds = SortOfClevr("val", tokenizer="words", **SMALL)
    t = ds.as_tensors()
    for i in (0, 17, len(ds) - 1):
        item = ds[i]
        assert torch.equal(t["images"][t["image_index"][i]].float() / 255, item["image"])
        n = int(t["attention_mask"][i].sum())
        assert torch.equal(t["input_ids"][i, :n], item["input_ids"])
        assert int(t["answer"][i]) == item["answer"]


def test_cache_is_used_and_corruption_detected(tmp_path):
    ds = SortOfClevr("val", tokenizer=None, **SMALL)
    assert ds.generation_seconds is not None
    cache_files = list((tmp_path / "cache").glob("sort_of_clevr-*.npz"))
    assert len(cache_files) == 1
    soc.load_sort_of_clevr.cache_clear()
    again = SortOfClevr("val", tokenizer=None, **SMALL)
    assert again.generation_seconds is None, "second load must come from the cache"
    # corrupt: truncate the file
    path = cache_files[0]
    path.write_bytes(path.read_bytes()[:1000])
    soc.load_sort_of_clevr.cache_clear()
    with pytest.warns(UserWarning, match="unreadable Sort-of-CLEVR cache"):
        rebuilt = SortOfClevr("val", tokenizer=None, **SMALL)
    assert rebuilt.generation_seconds is not None and np.array_equal(rebuilt.answer, ds.answer)


def test_tampered_or_stale_cache_is_rebuilt(tmp_path, monkeypatch):
    config = SortOfClevrConfig(**SMALL)
    arrays = generate_sort_of_clevr(config)
    path = tmp_path / "cache" / f"sort_of_clevr-{config.key()}.npz"
    tampered = {k: v.copy() for k, v in arrays.items()}
    tampered["answer"][0] = (tampered["answer"][0] + 1) % 10
    soc_cache._write_cache(path, config, arrays)
    with np.load(path) as stored:  # rewrite with the right metadata but wrong contents
        meta = str(stored["__meta__"])
    np.savez_compressed(path, __meta__=np.array(meta), **tampered)
    with pytest.warns(UserWarning, match="checksum mismatch"):
        assert soc_cache._read_cache(path, config) is None
    monkeypatch.setattr(soc_cache, "GENERATOR_VERSION", soc_config.GENERATOR_VERSION + 1)
    soc_cache._write_cache(path, config, arrays)
    monkeypatch.setattr(soc_cache, "GENERATOR_VERSION", soc_config.GENERATOR_VERSION)
    with pytest.warns(UserWarning, match="stale"):
        assert soc_cache._read_cache(path, config) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        soc_cache._write_cache(path, config, arrays)
        assert soc_cache._read_cache(path, config) is not None
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"num_objects": 7}, ValueError, r"num_objects=7: expected 2..6, one object per colour"),
        (
            {"image_size": 30},
            ValueError,
            r"image_size=30 is too small for 6 objects of size 5: expected image_size >= 44",
        ),
        ({"n_train": -1}, ValueError, r"n_train must be >= 0, got -1"),
        ({"n_train": 0, "n_val": 0, "n_test": 0}, ValueError, "at least one"),
        ({"data_seed": -3}, ValueError, "data_seed=-3: expected a non-negative int"),
        ({"questions_per_type": 2.5}, TypeError, "questions_per_type=2.5: expected an int"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        SortOfClevrConfig(**kwargs)


def test_bad_split_and_tokenizer():
    with pytest.raises(ValueError, match=r"split='dev': expected one of"):
        SortOfClevr("dev", **SMALL)
    with pytest.raises(ValueError, match="could not load a tokenizer from '/no/such/model'"):
        SortOfClevr("val", tokenizer="/no/such/model", **SMALL)


def test_question_batches_match_collate():
    ds = SortOfClevr("val", tokenizer="words", **SMALL)
    batches = list(ds.batches(7, shuffle=True, generator=torch.Generator().manual_seed(0)))
    assert sum(len(b["answer"]) for b in batches) == len(ds)
    first = batches[0]
    assert {"image", "input_ids", "attention_mask", "structured", "answer", "qtype", "target"} <= set(first)
    order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:7]
    for row, i in enumerate(order.tolist()):
        item = ds[i]
        assert torch.equal(first["image"][row], item["image"])
        assert int(first["answer"][row]) == item["answer"]
        n = int(first["attention_mask"][row].sum())
        assert torch.equal(first["input_ids"][row, :n], item["input_ids"])


def test_image_batches_hold_every_question_of_each_image_once():
    ds = SortOfClevr("val", tokenizer="words", **SMALL)
    batches = list(ds.batches(3, shuffle=True, generator=torch.Generator().manual_seed(0), by_image=True))
    assert len(batches) == -(-SMALL["n_val"] // 3)
    seen = torch.cat([b["index"] for b in batches])
    assert sorted(seen.tolist()) == list(range(len(ds)))  # every question exactly once
    for batch in batches:
        assert batch["images"].shape[0] <= 3 and batch["images"].dtype == torch.float32
        for row, i in enumerate(batch["index"].tolist()):
            item = ds[i]
            assert torch.equal(batch["images"][batch["image_row"][row]], item["image"])
            assert int(batch["answer"][row]) == item["answer"]
            n = int(batch["attention_mask"][row].sum())
            assert torch.equal(batch["input_ids"][row, :n], item["input_ids"])


def test_batches_keep_only_the_requested_question_types():
    ds = SortOfClevr("val", tokenizer="words", **SMALL)
    for by_image in (False, True):
        batches = list(ds.batches(4, by_image=by_image, question_types=(0,)))
        qtypes = torch.cat([b["qtype"] for b in batches])
        assert (qtypes == 0).all() and len(qtypes) == int((torch.from_numpy(ds.qtype) == 0).sum())
    with pytest.raises(ValueError, match="question_types"):
        ds.batches(4, question_types=(2,))
    with pytest.raises(ValueError, match="images_per_batch"):
        ds.batches(0, by_image=True)


def test_object_region_mask_marks_the_cells_under_an_object():
    from mmtutorial.data.sort_of_clevr import object_region_mask

    # each cell is 15 px; an object covers [c - 5, c + 5]
    mask = object_region_mask(torch.tensor([[7, 7], [37, 20], [70, 70], [15, 15]]))
    assert mask.shape == (4, 25)
    cells = [row.nonzero().flatten().tolist() for row in mask]
    assert cells == [[0], [7], [24], [0, 1, 5, 6]]  # (15, 15) straddles four cells
    with pytest.raises(ValueError, match=r"expected centers of shape \(batch, 2\)"):
        object_region_mask(torch.tensor([1, 2]))


def test_the_cache_lives_in_the_checkouts_data_folder(monkeypatch):
    monkeypatch.delenv("MMTUTORIAL_CACHE", raising=False)
    assert soc.cache_dir() == Path(__file__).resolve().parents[1] / "data" / "cache"


def test_drop_last_gives_batches_of_one_shape():
    ds = SortOfClevr("train", tokenizer="words", n_train=23, n_val=1, n_test=1, data_seed=2)
    kept = ds.batches(5, shuffle=True, generator=torch.Generator().manual_seed(0), by_image=True, drop_last=True)
    shapes = {(tuple(b["images"].shape), tuple(b["input_ids"].shape)) for b in kept}
    assert len(kept) == 4 and len(shapes) == 1, "23 images: 4 batches of 5, the last 3 dropped"
    every = ds.batches(5, by_image=True)
    assert len(every) == 5 and sum(len(b["images"]) for b in every) == 23
    with pytest.raises(ValueError, match="only whole-image batches"):
        ds.batches(5, drop_last=True)


def test_translation_moves_each_image_whole_and_its_answers_stay_true():
    """Every translated image is its scene drawn at the shift (no pixel lost), and every
    answer, checked independently from the shifted scene graph, is right."""
    ds = SortOfClevr("train", tokenizer=None, **SMALL)
    batches = ds.batches(8, shuffle=True, generator=torch.Generator().manual_seed(1), by_image=True, translate=True)
    size, flipped, moved = ds.config.image_size, 0, 0
    for batch in batches:
        for row, i in enumerate(batch["index"].tolist()):
            objects = ds.scene(i)
            target = next(o for o in objects if o["color"] == COLORS[int(batch["target"][row])])
            dx, dy = (batch["target_xy"][row] - torch.tensor([target["x"], target["y"]])).tolist()
            image = batch["images"][batch["image_row"][row]]
            canvas = torch.ones(3, 3 * size, 3 * size)
            canvas[:, size + dy : 2 * size + dy, size + dx : 2 * size + dx] = ds[i]["image"]
            assert torch.equal(image, canvas[:, size : 2 * size, size : 2 * size]), f"question {i}, shift {dx, dy}"
            assert (canvas < 1).sum() == (ds[i]["image"] < 1).sum(), "an object left the image"
            shifted = [
                (COLORS.index(o["color"]), int(o["shape"] == "circle"), o["x"] + dx, o["y"] + dy) for o in objects
            ]
            qtype, subtype, a = int(batch["qtype"][row]), int(batch["subtype"][row]), int(batch["target"][row])
            answer = expected_answer(shifted, qtype, subtype, a, -1, ds.answers)
            assert ds.answers[int(batch["answer"][row])] == answer, f"question {i}: {ds.text(i)!r} after {dx, dy}"
            flipped += int(batch["answer"][row]) != int(ds.answer[i])
            moved += (dx, dy) != (0, 0)
    assert moved > len(ds) // 2 and 0 < flipped, (moved, flipped)


def test_translation_keeps_the_epoch_order_and_changes_only_positional_answers():
    ds = SortOfClevr("train", tokenizer=None, **SMALL)
    plain, shifted = (
        list(ds.batches(8, shuffle=True, generator=torch.Generator().manual_seed(0), by_image=True, translate=t))
        for t in (False, True)
    )
    for a, b in zip(plain, shifted, strict=True):
        assert torch.equal(a["index"], b["index"]), "the same images in the same order"
        positional = (a["qtype"] == 0) & (a["subtype"] > 0)
        assert torch.equal(a["answer"][~positional], b["answer"][~positional])
    with pytest.raises(ValueError, match="translate=True: only whole-image batches"):
        ds.batches(8, translate=True)
    with pytest.raises(TypeError, match="translate"):
        ds.batches(8, by_image=True, translate="yes")
    tensors = ds.as_tensors()
    del tensors["target_xy"]
    with pytest.raises(KeyError, match="target_xy"):
        soc.ImageBatches(tensors, 8, translate=True)


def test_translation_ranges_keep_every_object_pixel_inside():
    from mmtutorial.data.sort_of_clevr.augment import draw_shifts, translation_ranges

    image = torch.full((2, 3, 8, 8), 255, dtype=torch.uint8)
    image[0, :, 2, 5] = 0  # one ink pixel at x = 5, y = 2
    ranges = translation_ranges(image)
    assert ranges[0].tolist() == [[-5, 2], [-2, 5]]
    assert ranges[1].tolist() == [[0, 0], [0, 0]], "an empty image stays"
    shifts = draw_shifts(ranges[:1].expand(2000, 2, 2), torch.Generator().manual_seed(0))
    assert shifts[:, 0].unique().tolist() == list(range(-5, 3)) and shifts[:, 1].unique().tolist() == list(range(-2, 6))
    with pytest.raises(TypeError, match="uint8"):
        translation_ranges(image.float())
