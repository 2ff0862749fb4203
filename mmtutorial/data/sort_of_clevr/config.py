"""Everything that determines the generated data, and so the cache key."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from ...validation import (
    check_bool,
    check_int,
    check_nonnegative_int,
)
from .questions import ANSWERS, ANSWERS_TERNARY, COLORS

#: Bump when generated data would change: it invalidates every cache.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class SortOfClevrConfig:
    """Everything that determines the generated data (and so the cache key)."""

    n_train: int = 9800
    n_val: int = 200
    n_test: int = 200
    image_size: int = 75
    num_objects: int = 6
    object_size: int = 5  # circle radius, half the square's side
    questions_per_type: int = 10
    ternary: bool = False
    data_seed: int = 0  # draws the data; a notebook's `seed` (initialisation, shuffling) never changes it

    def __post_init__(self) -> None:
        for name in ("n_train", "n_val", "n_test", "questions_per_type", "image_size", "object_size", "num_objects"):
            check_int(name, getattr(self, name))
        check_bool("ternary", self.ternary)
        for name in ("n_train", "n_val", "n_test"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("at least one of n_train, n_val, n_test must be positive")
        if self.questions_per_type < 1:
            raise ValueError(f"questions_per_type must be >= 1, got {self.questions_per_type}")
        if self.object_size < 1:
            raise ValueError(f"object_size must be >= 1, got {self.object_size}")
        if not 2 <= self.num_objects <= len(COLORS):
            raise ValueError(
                f"num_objects={self.num_objects}: expected 2..{len(COLORS)}, one object per colour "
                f"({', '.join(COLORS)})"
            )
        if self.ternary and self.num_objects < 3:
            raise ValueError(f"ternary questions need at least 3 objects, got num_objects={self.num_objects}")
        # Objects need disjoint (2s+1)-pixel boxes with centres in [s, size - s):
        # a grid packing must fit them with room to spare for random placement.
        box = 2 * self.object_size + 1
        per_row = (self.image_size - 2 * self.object_size - 1) // box + 1
        if self.image_size < box or per_row * per_row < 2 * self.num_objects:
            raise ValueError(
                f"image_size={self.image_size} is too small for {self.num_objects} objects of size "
                f"{self.object_size}: expected image_size >= {self.minimum_image_size()}"
            )
        check_nonnegative_int("data_seed", self.data_seed)

    def minimum_image_size(self) -> int:
        box = 2 * self.object_size + 1
        per_row = int(np.ceil(np.sqrt(2 * self.num_objects)))
        return (per_row - 1) * box + 2 * self.object_size + 1

    @property
    def answers(self) -> tuple[str, ...]:
        return ANSWERS_TERNARY if self.ternary else ANSWERS

    @property
    def question_types(self) -> int:
        return 3 if self.ternary else 2

    @property
    def structured_dim(self) -> int:
        """Size of the structured question vector: 11 as in the paper's generator
        (colour 6 + type 2 + subtype 3), or 18 with ternary questions (colour A 6 +
        colour B 6 + type 3 + subtype 3)."""
        return 18 if self.ternary else 11

    def key(self) -> str:
        payload = json.dumps({"version": GENERATOR_VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]
