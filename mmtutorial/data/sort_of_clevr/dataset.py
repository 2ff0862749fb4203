"""One split of Sort-of-CLEVR as a ``torch.utils.data.Dataset`` of questions."""

from __future__ import annotations

import operator
from dataclasses import fields

import numpy as np
import torch
from torch.utils.data import Dataset

from ...validation import (
    check_bool,
    check_device,
)
from ..text import load_tokenizer
from .batches import ImageBatches, QuestionBatches, pad_token_ids
from .cache import load_sort_of_clevr
from .config import SortOfClevrConfig
from .questions import COLORS, QUESTION_TYPES, SHAPES, SPLITS, TEMPLATES, question_text

# --------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------


class SortOfClevr(Dataset):
    """One split of Sort-of-CLEVR as a ``torch.utils.data.Dataset`` of questions.

    Args:
        split: ``"train"``, ``"val"``, ``"test"``, or ``"test_heldout"`` (the test
            questions rendered with the held-out paraphrase templates).
        tokenizer: ``"minilm"`` (default: the bundled all-MiniLM-L6-v2 tokenizer),
            ``"words"`` (a word vocabulary built from every template), any Hugging Face
            name or path, a tokenizer object, or None for no token ids.
        use_cache: read/write ``data/cache/`` (see :func:`cache_dir`).
        **config: fields of :class:`SortOfClevrConfig` (sizes, ``ternary``, ``data_seed`` ...).

    Each item is a dict: ``image`` float ``(3, H, W)`` in [0, 1]; ``input_ids`` (1-D,
    unpadded); ``structured`` (the paper's one-hot question vector); ``answer``;
    ``qtype`` (0 non-relational, 1 relational, 2 ternary); ``subtype``; ``template``;
    ``objects`` ``(k, 4)`` = (colour, shape 0 square / 1 circle, x, y) per object,
    the scene graph; ``target`` (index of the object the question names); ``text``.
    Batch with :meth:`collate` (pads token ids, adds ``attention_mask``).
    """

    def __init__(self, split: str = "train", tokenizer="minilm", use_cache: bool = True, **config) -> None:
        if split not in SPLITS:
            raise ValueError(f"split={split!r}: expected one of {SPLITS}")
        known = {f.name for f in fields(SortOfClevrConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise TypeError(
                f"unknown SortOfClevr option(s) {unknown}: expected split, tokenizer, use_cache "
                f"or fields of SortOfClevrConfig {sorted(known)}"
            )
        if tokenizer is not None and not isinstance(tokenizer, str) and not callable(tokenizer):
            raise TypeError(
                f"tokenizer={tokenizer!r}: expected 'minilm', 'words', a model name or path, "
                "a tokenizer object, or None"
            )
        check_bool("use_cache", use_cache)
        self.config = SortOfClevrConfig(**config)
        self.split = split
        arrays = load_sort_of_clevr(self.config, use_cache)
        self.generation_seconds = float(arrays["__seconds__"]) if "__seconds__" in arrays else None
        split_id = {"train": 0, "val": 1, "test": 2, "test_heldout": 2}[split]
        # Keep only this split's images; image_index is renumbered to point into them.
        own_images = np.flatnonzero(arrays["image_split"] == split_id)
        self.images = torch.from_numpy(arrays["images"][own_images])  # uint8 (N, 3, H, W), a copy
        self.centers = arrays["centers"][own_images]
        self.shapes = arrays["shapes"][own_images]
        rows = np.flatnonzero(arrays["image_split"][arrays["image_index"]] == split_id)
        self.image_index = arrays["image_index"][rows] - (own_images[0] if len(own_images) else 0)
        self.qtype = arrays["qtype"][rows].astype(np.int64)
        self.subtype = arrays["subtype"][rows].astype(np.int64)
        self.color_a = arrays["color_a"][rows].astype(np.int64)
        self.color_b = arrays["color_b"][rows].astype(np.int64)
        self.answer = arrays["answer"][rows].astype(np.int64)
        templates = arrays["template"][rows].astype(np.int64)
        if split == "test_heldout":
            templates = np.array([len(TEMPLATES[(t, s)]) - 1 for t, s in zip(self.qtype, self.subtype, strict=True)])
        self.template = templates
        self.answers = self.config.answers
        self._structured = self._structured_vectors()
        self._texts, self._text_id = self._unique_texts()
        self.tokenizer = self._make_tokenizer(tokenizer)
        if self.tokenizer is not None:
            self._token_ids = self.tokenizer(self._texts)["input_ids"]
            self.pad_token_id = int(self.tokenizer.pad_token_id)

    def _make_tokenizer(self, tokenizer):
        if tokenizer is None or callable(tokenizer) and not isinstance(tokenizer, str):
            return tokenizer
        corpus = [t.format(a=c, b=c) for templates in TEMPLATES.values() for t in templates for c in COLORS]
        return load_tokenizer(tokenizer, corpus=corpus)

    def _structured_vectors(self) -> torch.Tensor:
        n, c = len(self.answer), len(COLORS)
        vectors = torch.zeros(n, self.config.structured_dim)
        rows = torch.arange(n)
        vectors[rows, torch.from_numpy(self.color_a)] = 1.0
        if self.config.ternary:
            has_b = torch.from_numpy(self.color_b >= 0)
            vectors[rows[has_b], c + torch.from_numpy(self.color_b)[has_b]] = 1.0
            offset = 2 * c
        else:
            offset = c
        vectors[rows, offset + torch.from_numpy(self.qtype)] = 1.0
        vectors[rows, offset + self.config.question_types + torch.from_numpy(self.subtype)] = 1.0
        return vectors

    def _unique_texts(self) -> tuple[list[str], np.ndarray]:
        keys = np.stack([self.qtype, self.subtype, self.color_a, self.color_b, self.template], axis=1)
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        texts = [question_text(*map(int, row)) for row in unique]
        return texts, inverse.reshape(-1)

    def __len__(self) -> int:
        return len(self.answer)

    def _index(self, index) -> int:
        """``index`` as an int in range (negative counts from the end), or a clear error."""
        try:
            if isinstance(index, bool):
                raise TypeError
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index={index!r}: expected an int") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for a split of {len(self)} questions")
        return index

    def text(self, index: int) -> str:
        """The question text of question ``index``."""
        return self._texts[self._text_id[self._index(index)]]

    def scene(self, index: int) -> list[dict]:
        """The scene graph of question ``index``'s image, as readable dicts."""
        i = self.image_index[self._index(index)]
        return [
            {
                "color": COLORS[j],
                "shape": SHAPES[int(self.shapes[i, j])],
                "x": int(self.centers[i, j, 0]),
                "y": int(self.centers[i, j, 1]),
            }
            for j in range(self.config.num_objects)
        ]

    def __getitem__(self, index: int) -> dict:
        index = self._index(index)
        i = int(self.image_index[index])
        objects = np.concatenate(
            [np.arange(self.config.num_objects)[:, None], self.shapes[i][:, None], self.centers[i]], axis=1
        )
        item = {
            "image": self.images[i].float() / 255.0,
            "structured": self._structured[index],
            "answer": int(self.answer[index]),
            "qtype": int(self.qtype[index]),
            "subtype": int(self.subtype[index]),
            "family": int(3 * self.qtype[index] + self.subtype[index]),
            "template": int(self.template[index]),
            "objects": torch.from_numpy(objects.astype(np.int64)),
            "target": int(self.color_a[index]),
            "image_index": i,
            "text": self.text(index),
        }
        if self.tokenizer is not None:
            item["input_ids"] = torch.tensor(self._token_ids[self._text_id[index]])
        return item

    def collate(self, batch: list[dict]) -> dict:
        """Stack a list of items; pad ``input_ids`` and add a boolean ``attention_mask``."""
        if not isinstance(batch, (list, tuple)) or not batch:
            raise ValueError(f"batch={batch!r:.60}: expected a non-empty list of items (dataset[i])")
        out = {}
        for key in ("image", "structured", "objects"):
            out[key] = torch.stack([item[key] for item in batch])
        for key in ("answer", "qtype", "subtype", "family", "template", "target", "image_index"):
            out[key] = torch.tensor([item[key] for item in batch])
        out["text"] = [item["text"] for item in batch]
        if "input_ids" in batch[0]:
            out["input_ids"], out["attention_mask"] = pad_token_ids(
                [item["input_ids"] for item in batch], self.pad_token_id
            )
        return out

    def as_tensors(self) -> dict[str, torch.Tensor]:
        """The whole split as tensors, for a device-resident data path: ``images`` uint8
        ``(N_images, 3, H, W)`` (indexed by ``image_index``) and one row per question
        for the rest (token ids padded to the split's longest)."""
        tensors = {
            "images": self.images,
            "index": torch.arange(len(self)),  # the question's row: ds.text(index), ds.scene(index)
            "image_index": torch.from_numpy(self.image_index.astype(np.int64)),
            "structured": self._structured,
            "answer": torch.from_numpy(self.answer),
            "qtype": torch.from_numpy(self.qtype),
            "subtype": torch.from_numpy(self.subtype),
            "family": torch.from_numpy(3 * self.qtype + self.subtype),
            "target": torch.from_numpy(self.color_a),
            # the named object's centre (x, y): what a translation moves (augment.py)
            "target_xy": torch.from_numpy(self.centers[self.image_index, self.color_a].astype(np.int64).reshape(-1, 2)),
        }
        if self.tokenizer is not None:
            ids, mask = pad_token_ids([torch.tensor(t) for t in self._token_ids], self.pad_token_id)
            text_id = torch.from_numpy(self._text_id.astype(np.int64))
            tensors["input_ids"], tensors["attention_mask"] = ids[text_id], mask[text_id]
        return tensors

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        by_image: bool = False,
        question_types: tuple[int, ...] | None = None,
        drop_last: bool = False,
        translate: bool = False,
    ) -> QuestionBatches | ImageBatches:
        """Batches straight from tensors held on ``device`` (no per-sample Python, no
        DataLoader): the fast path on CPU and the GPU-resident path on a GPU.

        With ``by_image=True`` a batch is ``batch_size`` *images* with all their questions
        (see :class:`ImageBatches`), so a model encodes each image once, not once per
        question. ``question_types`` keeps only those types (e.g. ``(0,)``: non-relational).
        ``drop_last`` (whole-image batches) leaves out a last, smaller batch: every batch then
        has the same shapes (what CUDA graphs need). ``translate`` (whole-image batches, for
        training) shifts every image at random each epoch and recomputes the left/top answers
        (see :class:`ImageBatches`).
        """
        device = check_device("device", device)
        if question_types is not None:
            if not isinstance(question_types, (list, tuple)):
                raise TypeError(f"question_types={question_types!r}: expected a tuple of question types, e.g. (0,)")
            unknown = set(question_types) - set(range(self.config.question_types))
            if unknown:
                raise ValueError(
                    f"question_types={question_types!r}: expected values in "
                    f"0..{self.config.question_types - 1} ({', '.join(QUESTION_TYPES[: self.config.question_types])})"
                )
        tensors = self.as_tensors()
        if question_types is not None:
            keep = torch.isin(tensors["qtype"], torch.tensor(question_types))
            tensors = {k: (v if k == "images" else v[keep]) for k, v in tensors.items()}
        if by_image:
            return ImageBatches(
                tensors, batch_size, shuffle, generator, device, drop_last=drop_last, translate=translate
            )
        if drop_last:
            raise ValueError("drop_last=True: only whole-image batches (by_image=True) drop a last batch")
        if translate:
            raise ValueError("translate=True: only whole-image batches (by_image=True) are translated")
        return QuestionBatches(tensors, batch_size, shuffle, generator, device)

    def __repr__(self) -> str:
        return (
            f"SortOfClevr(split={self.split!r}, questions={len(self)}, images={len(np.unique(self.image_index))}, "
            f"answers={len(self.answers)}, tokenizer={type(self.tokenizer).__name__ if self.tokenizer else None})"
        )
