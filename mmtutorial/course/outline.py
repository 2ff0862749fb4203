"""The course outline: one entry per notebook, in learning order.

The welcome notebook draws the path from this list and a test checks that the
README's learning-path table and the ``notebooks/`` folder agree with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["Lesson", "COURSE", "available_lessons", "find_notebook_dir"]


@dataclass(frozen=True)
class Lesson:
    """One notebook of the course."""

    number: int
    slug: str
    title: str
    learn: str
    part: str

    @property
    def filename(self) -> str:
        return f"{self.number:02d}_{self.slug}.ipynb"


COURSE: tuple[Lesson, ...] = (
    Lesson(
        0,
        "welcome",
        "Welcome",
        "How the course runs: JupyterLab, papermill, smoke mode; checking your setup",
        "Foundations",
    ),
    Lesson(
        1,
        "attention_as_soft_lookup",
        "Attention as soft lookup",
        "Attention as a differentiable dictionary; Nadaraya-Watson kernel regression; soft vs hard attention and temperature",
        "Foundations",
    ),
    Lesson(
        2,
        "additive_and_dot_product_attention",
        "Additive and dot-product attention",
        "Scoring functions; why scale by sqrt(d); padding and causal masks; multi-head attention equal to PyTorch's; timing vs SDPA",
        "Foundations",
    ),
    Lesson(
        3,
        "data_tour",
        "Data tour",
        "Sort-of-CLEVR with text questions and AV-Digits (handwritten + spoken digits)",
        "Data",
    ),
    Lesson(
        4,
        "self_attention_and_transformers",
        "Self-attention and Transformers",
        "Positional encodings and the Transformer encoder block",
        "Sequences",
    ),
    Lesson(
        5,
        "efficient_and_sparse_attention",
        "Efficient and sparse attention",
        "The quadratic cost; sliding-window and global attention with FlexAttention",
        "Sequences",
    ),
    Lesson(
        6,
        "cross_modal_attention",
        "Cross-modal attention",
        "Text queries attending over image regions; co-attention; multi-hop",
        "Fusion",
    ),
    Lesson(
        7,
        "fusion_strategies",
        "Fusion strategies",
        "Early, late, hybrid, gated, FiLM, bilinear and token fusion compared",
        "Fusion",
    ),
    Lesson(8, "missing_modalities", "Missing modalities", "Modality dropout and robustness curves", "Fusion"),
    Lesson(
        9,
        "vqa_fusion_model",
        "A VQA fusion model",
        "Image + text encoders + attention fusion on Sort-of-CLEVR",
        "Capstone",
    ),
    Lesson(
        10,
        "experiments_with_papermill",
        "Experiments with papermill",
        "Parameter sweeps, result collection, distributed runs",
        "Capstone",
    ),
)


def find_notebook_dir() -> Path | None:
    """The course's ``notebooks/`` folder: the working directory (JupyterLab runs
    notebooks there), ``./notebooks`` (``make run``), or next to the package
    (editable install). None if it cannot be found."""
    candidates = [Path.cwd(), Path.cwd() / "notebooks", Path(__file__).resolve().parents[2] / "notebooks"]
    for folder in candidates:
        if (folder / COURSE[0].filename).exists():
            return folder
    return None


def available_lessons(notebook_dir: Path | None) -> list[Lesson]:
    """The lessons whose notebook exists in ``notebook_dir``."""
    if notebook_dir is None:
        return []
    return [lesson for lesson in COURSE if (Path(notebook_dir) / lesson.filename).exists()]
