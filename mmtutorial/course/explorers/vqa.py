"""Notebooks 06 and 09: ask a trained VQA model a question about an image, see where it looks.

Pick an image of a Sort-of-CLEVR split (or generate a new scene), type a question (or
choose one of the image's own), and see the model's answer, its probability for every
answer, and every attention map it returns (each hop or layer) over the image, with the
box of the object the question names. A question worded like one of the data set's
templates also gets the true answer, computed from the scene.

Works with any model called as ``model(batch, return_attention=True) -> (logits, maps)``
(``maps``: a dict of ``(B, regions)`` attention maps, as :class:`mmtutorial.models.vqa.VQAModel`
returns), with a model whose ``forward(batch)`` leaves its maps in ``model.maps``, and with
a checkpoint file written by :func:`mmtutorial.models.vqa.save_vqa_checkpoint`.
"""

from __future__ import annotations

import inspect
import itertools
import os
import textwrap
from collections.abc import Mapping

import numpy as np
import torch
from matplotlib.patches import Rectangle
from torch import nn

from ...data import SortOfClevr
from ...data.sort_of_clevr import (
    COLORS,
    TEMPLATES,
    SortOfClevrConfig,
    generate_sort_of_clevr,
    object_region_mask,
    question_text,
)
from ...data.sort_of_clevr.generate import answer_questions  # the one definition of every answer
from ...data.text import WordTokenizer
from ...models.vqa import load_vqa_checkpoint
from ...validation import check_int
from .base import Explorer

__all__ = ["VQAExplorer", "explore_vqa", "parse_question"]


def _words(text: str) -> tuple[str, ...]:
    return tuple(WordTokenizer.split(text))


def _renderings(ternary: bool) -> dict[tuple[str, ...], tuple[int, int, int, int, int]]:
    """Every wording of every template with every colour: words -> (qtype, subtype, a, b, template)."""
    found = {}
    for (qtype, subtype), templates in TEMPLATES.items():
        if qtype == 2 and not ternary:
            continue
        pairs = itertools.permutations(range(len(COLORS)), 2) if qtype == 2 else ((a, -1) for a in range(len(COLORS)))
        for a, b in pairs:
            for template, text in enumerate(templates):
                rendered = text.format(a=COLORS[a], b=COLORS[b] if b >= 0 else "")
                found[_words(rendered)] = (qtype, subtype, a, b, template)
    return found


_RENDERINGS: dict[bool, dict] = {}


def parse_question(text: str, ternary: bool = False) -> tuple[int, int, int, int, int] | None:
    """``(qtype, subtype, color_a, color_b, template)`` of a question worded exactly like one
    of the data set's templates (case and spacing aside), else None."""
    if ternary not in _RENDERINGS:
        _RENDERINGS[ternary] = _renderings(ternary)
    return _RENDERINGS[ternary].get(_words(text))


def _named_colours(text: str) -> list[int]:
    """The colours a question mentions, in order."""
    words = _words(text)
    return [COLORS.index(w) for w in words if w in COLORS]


class VQAExplorer(Explorer):
    """An image, a question, and a VQA model's answer and attention."""

    def __init__(self, model, dataset: SortOfClevr, answers=None, image: int = 0, question: str | None = None):
        super().__init__(figsize=(10, 3.9))
        if isinstance(model, (str, os.PathLike)):
            model, info = load_vqa_checkpoint(model, map_location="cpu")
            answers = answers or info["answers"]
            vocabulary = info.get("vocabulary")
            tokenizer_vocab = getattr(getattr(dataset, "tokenizer", None), "vocab", None)
            if vocabulary and tokenizer_vocab is not None and list(tokenizer_vocab) != list(vocabulary):
                raise ValueError(
                    "the checkpoint's word vocabulary differs from the data set's tokenizer: build the data set "
                    "with the tokenizer the model was trained with (SortOfClevr(..., tokenizer='words'))"
                )
        if not isinstance(model, nn.Module):
            raise TypeError(f"model={model!r:.60}: expected a trained VQA model (nn.Module) or a checkpoint path")
        if not isinstance(dataset, SortOfClevr) or len(dataset) == 0:
            raise TypeError(f"dataset={dataset!r:.60}: expected a non-empty SortOfClevr split")
        self.model, self.dataset = model, dataset
        self.answers = list(answers or dataset.answers)
        self.config = dataset.config
        self.device = next(model.parameters()).device
        self.takes_flag = "return_attention" in inspect.signature(model.forward).parameters
        self.tokenizer = dataset.tokenizer
        order = np.argsort(dataset.image_index, kind="stable")
        starts = np.searchsorted(dataset.image_index[order], np.arange(len(dataset.images) + 1))
        self._rows_of_image = [order[starts[i] : starts[i + 1]] for i in range(len(dataset.images))]
        self.generated: list[dict] = []
        self._next_seed = 1_000_000 + int(self.config.data_seed)
        self.result: dict = {}
        self.state = {"image": 0, "question": ""}
        self.state["image"] = self.validate("image", image)
        own = self.questions()[0] if self.questions() else ""
        self.state["question"] = self.validate("question", own if question is None else question)
        # One question the model can read tells which attention maps it returns.
        self.map_names = list(self._run(own)["maps"]) if own and not self._tokens(own)[1] else []
        self.figure.set_size_inches(3.3 * (2 + max(1, len(self.map_names))), 3.9)
        self._build()
        self.refresh()

    # -- images and questions -----------------------------------------------------------

    @property
    def num_images(self) -> int:
        return len(self.dataset.images) + len(self.generated)

    def scene(self, image: int | None = None) -> dict:
        """``image`` uint8 ``(3, H, W)``, ``centers`` ``(k, 2)``, ``shapes`` ``(k,)``, ``questions``."""
        i = self.state["image"] if image is None else image
        if i < len(self.dataset.images):
            rows = self._rows_of_image[i]
            return {
                "image": self.dataset.images[i],
                "centers": self.dataset.centers[i],
                "shapes": self.dataset.shapes[i],
                "questions": list(dict.fromkeys(self.dataset.text(int(r)) for r in rows)),
            }
        return self.generated[i - len(self.dataset.images)]

    def questions(self) -> list[str]:
        """The current image's own questions (from the data set, or generated with it)."""
        return self.scene()["questions"]

    def new_image(self) -> int:
        """Generate a new scene (the data set's generator, a fresh seed); show it; return its index."""
        cfg = self.config
        arrays = generate_sort_of_clevr(
            SortOfClevrConfig(
                n_train=1,
                n_val=0,
                n_test=0,
                image_size=cfg.image_size,
                num_objects=cfg.num_objects,
                object_size=cfg.object_size,
                questions_per_type=cfg.questions_per_type,
                ternary=cfg.ternary,
                data_seed=self._next_seed,
            )
        )
        self._next_seed += 1
        texts = [
            question_text(int(t), int(s), int(a), int(b), int(p))
            for t, s, a, b, p in zip(
                arrays["qtype"],
                arrays["subtype"],
                arrays["color_a"],
                arrays["color_b"],
                arrays["template"],
                strict=True,
            )
        ]
        self.generated.append(
            {
                "image": torch.from_numpy(arrays["images"][0]),
                "centers": arrays["centers"][0],
                "shapes": arrays["shapes"][0],
                "questions": list(dict.fromkeys(texts)),
            }
        )
        index = self.num_images - 1
        if "image" in self.controls:
            self.controls["image"].max = index
            self.controls["image"].value = index  # its observer shows it
        else:
            self.set(image=index)
        return index

    def validate(self, name, value):
        if name == "image":
            return check_int("image", value, minimum=0, maximum=self.num_images - 1)
        if not isinstance(value, str):
            raise TypeError(f"question={value!r:.60}: expected a string")
        return value.strip()

    # -- the model ----------------------------------------------------------------------

    def _tokens(self, question: str) -> tuple[list[int], list[str]]:
        """Token ids of ``question`` and the words the tokenizer does not know."""
        if self.tokenizer is None:
            return [], []
        ids = list(self.tokenizer([question])["input_ids"][0])
        if isinstance(self.tokenizer, WordTokenizer):
            unknown = [w for w in WordTokenizer.split(question) if w not in self.tokenizer.vocab]
        else:
            unk = getattr(self.tokenizer, "unk_token_id", None)
            unknown = ["(a word the tokenizer does not know)"] if unk is not None and unk in ids else []
        return ids, unknown

    def _structured(self, parsed) -> torch.Tensor | None:
        if parsed is None:
            return None
        qtype, subtype, a, b, _ = parsed
        vector = torch.zeros(1, self.config.structured_dim)
        c = len(COLORS)
        vector[0, a] = 1.0
        offset = c
        if self.config.ternary:
            if b >= 0:
                vector[0, c + b] = 1.0
            offset = 2 * c
        vector[0, offset + qtype] = 1.0
        vector[0, offset + self.config.question_types + subtype] = 1.0
        return vector

    def _run(self, question: str) -> dict:
        """Answer ``question`` about the current image: probabilities and attention maps."""
        scene = self.scene()
        ids, _ = self._tokens(question)
        parsed = parse_question(question, self.config.ternary)
        batch = {
            "images": scene["image"][None].float().div(255.0),
            "image_row": torch.zeros(1, dtype=torch.long),
            "input_ids": torch.tensor([ids or [0]]),
            "attention_mask": torch.ones(1, max(1, len(ids)), dtype=torch.bool),
        }
        structured = self._structured(parsed)
        if structured is not None:
            batch["structured"] = structured
        batch = {k: v.to(self.device) for k, v in batch.items()}
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                if self.takes_flag:
                    logits, maps = self.model(batch, return_attention=True)
                else:
                    logits = self.model(batch)
                    maps = getattr(self.model, "maps", {})
        finally:
            self.model.train(was_training)
        if not isinstance(maps, Mapping):
            maps = {f"map {i + 1}": m for i, m in enumerate(maps)}
        return {
            "probabilities": torch.softmax(logits[0].float(), -1).cpu(),
            "maps": {name: m[0].float().cpu() for name, m in maps.items()},
            "parsed": parsed,
        }

    def ask(self) -> dict:
        """Answer the current question; sets :attr:`result` (``answer``, ``probabilities``,
        ``maps``, ``truth``, ``named``, ``on_named``, ``message``)."""
        question, scene = self.state["question"], self.scene()
        ids, unknown = self._tokens(question)
        parsed = parse_question(question, self.config.ternary)
        named = [parsed[2]] if parsed else _named_colours(question)[:1]
        result = {"answer": None, "probabilities": None, "maps": {}, "truth": None, "named": named, "on_named": {}}
        if unknown:
            result["message"] = (
                f"unknown words {', '.join(repr(w) for w in unknown)}: the model never saw them. "
                f"Try one of the image's own questions (the list), e.g. {self.questions()[0]!r}"
            )
        elif not question:
            result["message"] = "type a question about the image"
        elif self.tokenizer is None and self._structured(parsed) is None:
            result["message"] = "this model reads the structured question: type one of the data set's wordings"
        else:
            result.update(self._run(question))
            result["answer"] = self.answers[int(result["probabilities"].argmax())]
            result["message"] = ""
        if parsed is not None:
            qtype, subtype, a, b, _ = parsed
            truth = answer_questions(
                scene["centers"][None],
                scene["shapes"][None],
                np.zeros(1, dtype=np.int64),
                np.array([qtype]),
                np.array([subtype]),
                np.array([a]),
                np.array([b]),
                self.config,
            )[0]
            result["truth"] = self.config.answers[int(truth)]
        if named and result["maps"]:
            first = next(iter(result["maps"].values()))
            grid = int(round(len(first) ** 0.5))
            centre = torch.from_numpy(np.asarray(scene["centers"][named[0]], dtype=np.int64))[None]
            cells = object_region_mask(
                centre, grid=grid, image_size=self.config.image_size, object_size=self.config.object_size
            )[0]
            result["on_named"] = {name: float(m[cells].sum()) for name, m in result["maps"].items()}
            result["uniform"] = float(cells.float().mean())
        self.result = result
        return result

    # -- the figure ---------------------------------------------------------------------

    def _box(self, ax) -> Rectangle:
        side = 2 * self.config.object_size + 1
        box = Rectangle((0, 0), side, side, fill=False, edgecolor="black", linewidth=1.5, animated=True)
        ax.add_patch(box)
        return box

    def _build(self) -> None:
        size = self.config.image_size
        n_maps = max(1, len(self.map_names))
        axes = self.figure.subplots(1, 2 + n_maps, width_ratios=(1, 0.9) + (1,) * n_maps)
        image_ax, answer_ax, map_axes = axes[0], axes[1], axes[2:]
        blank = np.ones((size, size, 3))
        self.image = image_ax.imshow(blank, animated=True)
        self.boxes = [self._box(image_ax)]
        image_ax.title.set_animated(True)
        self.answer_bars = answer_ax.barh(range(len(self.answers)), [0.0] * len(self.answers), animated=True)
        answer_ax.set_yticks(range(len(self.answers)), self.answers)
        answer_ax.invert_yaxis()
        answer_ax.set_xlim(0, 1)
        answer_ax.set_xlabel("probability")
        answer_ax.title.set_animated(True)
        self.map_images, self.overlays = [], []
        for ax, name in zip(map_axes, self.map_names or ["(no attention maps)"], strict=True):
            self.map_images.append(ax.imshow(blank, alpha=0.35, animated=True))
            self.overlays.append(
                ax.imshow(
                    np.zeros((5, 5)),
                    cmap="magma",
                    alpha=0.65,
                    extent=(0, size, size, 0),
                    vmin=0,
                    vmax=1,
                    interpolation="nearest",
                    animated=True,
                )
            )
            self.boxes.append(self._box(ax))
            ax.set_title(name)
            ax.title.set_animated(True)
        for ax in [image_ax, *map_axes]:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(0, size)
            ax.set_ylim(size, 0)
        self.image_ax, self.answer_ax, self.map_axes = image_ax, answer_ax, list(map_axes)

    def draw(self) -> None:
        result, scene = self.ask(), self.scene()
        picture = scene["image"].permute(1, 2, 0).numpy()
        self.image.set_data(picture)
        for image in self.map_images:
            image.set_data(picture)
        self.image_ax.set_title("\n".join(textwrap.wrap(self.state["question"] or "(no question)", 36)), fontsize=9)
        s = self.config.object_size
        for box in self.boxes:
            box.set_visible(bool(result["named"]))
            if result["named"]:
                x, y = scene["centers"][result["named"][0]]
                box.set_xy((x - s - 0.5, y - s - 0.5))
        probabilities = result["probabilities"]
        for i, bar in enumerate(self.answer_bars):
            p = 0.0 if probabilities is None else float(probabilities[i])
            bar.set_width(p)
            bar.set_color("tab:red" if probabilities is not None and i == int(probabilities.argmax()) else "tab:blue")
        truth = f"\n(truth: {result['truth']})" if result["truth"] else ""
        if result["answer"] is None:
            self.answer_ax.set_title("no answer" + truth, fontsize=9)
        else:
            self.answer_ax.set_title(
                f"answer: {result['answer']} ({float(probabilities.max()):.2f}){truth}", fontsize=9
            )
        for ax, overlay, name in zip(self.map_axes, self.overlays, self.map_names or [None], strict=True):
            weights = result["maps"].get(name) if name else None
            if weights is None:
                overlay.set_data(np.zeros((5, 5)))
                ax.set_title(name or "(no attention maps)", fontsize=9)
                continue
            grid = int(round(len(weights) ** 0.5))
            overlay.set_data(weights.view(grid, grid).numpy())
            overlay.set_clim(0, max(float(weights.max()), 1e-6))
            on = result["on_named"].get(name)
            ax.set_title(f"{name}" + (f": {on:.2f} on the named object" if on is not None else ""), fontsize=9)
        if result["message"]:
            self.status = result["message"]
        else:
            where = ", ".join(f"{k} {v:.2f}" for k, v in result["on_named"].items())
            self.status = (
                f"answer {result['answer']} ({float(probabilities.max()):.2f})"
                + (f", truth {result['truth']}" if result["truth"] else "")
                + (
                    f"; attention on the {COLORS[result['named'][0]]} object: {where} (uniform {result['uniform']:.2f})"
                    if where
                    else ""
                )
            )

    def make_controls(self, widgets) -> list:
        s, style = self.state, {"description_width": "initial"}
        image = self.bind(
            widgets.IntSlider(value=s["image"], min=0, max=self.num_images - 1, description="image", style=style),
            "image",
        )
        new = widgets.Button(description="new image", icon="refresh", tooltip="generate a new scene")
        new.on_click(lambda _: self.new_image())
        self.controls["new image"] = new
        question = self.bind(
            widgets.Text(
                value=s["question"],
                placeholder="What shape is the red object?",
                description="question",
                continuous_update=False,
                layout=widgets.Layout(width="460px"),
                style=style,
            ),
            "question",
        )
        own = widgets.Dropdown(
            options=self.questions(),
            value=None,
            description="its questions",
            layout=widgets.Layout(width="460px"),
            style=style,
        )
        own.observe(lambda change: setattr(question, "value", change["new"]) if change["new"] else None, names="value")
        self.controls["its questions"] = own
        image.observe(lambda change: setattr(own, "options", self.questions()), names="value")
        return [image, new, question, own]


def explore_vqa(model, dataset: SortOfClevr, answers=None, image: int = 0, question: str | None = None):
    """Notebooks 06 and 09's explorer: ``model`` (a trained VQA model, or the path of a
    checkpoint saved by ``save_vqa_checkpoint``) answers questions about the images of
    ``dataset`` (a ``SortOfClevr`` split with the tokenizer it was trained with), or about
    new ones; every attention map it returns is drawn over the image. Display it to get
    the widget."""
    return VQAExplorer(model, dataset, answers=answers, image=image, question=question)
