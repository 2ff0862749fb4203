"""Sort-of-CLEVR (Santoro et al. 2017, "A simple neural network module for relational
reasoning"), regenerated procedurally, with natural-language questions.

Each 75x75 RGB image on a white background holds 6 objects, one of each colour (red,
green, blue, orange, gray, yellow), each a circle (radius 5) or a square (side 10) with
probability 1/2. Per image there are 10 non-relational and 10 relational questions:

============== =========================================== ======================
type           subtype                                     answers
============== =========================================== ======================
non-relational 0 shape of the X object                     square / circle
non-relational 1 is X on the left (centre x < 37.5)?       yes / no
non-relational 2 is X on the top (centre y < 37.5)?        yes / no
relational     0 shape of the object closest to X          square / circle
relational     1 shape of the object furthest from X       square / circle
relational     2 how many objects have X's shape (incl. X) 1-6
============== =========================================== ======================

Extension, off by default (``ternary=True``), as in later public generators: 10 ternary
questions about two colours A and B: how many other objects lie inside the box spanned
by A and B; is any other object within 5 px of the segment AB; how many other objects
C make the angle ABC obtuse. The answer vocabulary then gains ``"0"``.

Differences from the widely used public generator, on purpose: questions ask about
every colour (its ternary questions never ask about yellow); count answers are exact
(it decodes counts off by one for zero); images are stored as uint8 ``(N, 3, H, W)``
(it stores float64, and its training script swaps height and width); objects never
overlap (centres are at least 10 px apart as in the paper *and* their bounding boxes are
disjoint); scenes where a closest/furthest question would be a tie are redrawn.
"""

from __future__ import annotations

import hashlib
import json
import operator
import os
import time
import warnings
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..train import TensorBatches
from ..validation import (
    check_bool,
    check_device,
    check_int,
    check_nonnegative_int,
    check_positive_int,
    check_tensor,
    require_keys,
)
from .text import load_tokenizer

__all__ = [
    "COLORS",
    "COLOR_RGB",
    "SHAPES",
    "ANSWERS",
    "QUESTION_TYPES",
    "SUBTYPE_NAMES",
    "FAMILY_NAMES",
    "TEMPLATES",
    "SortOfClevrConfig",
    "SortOfClevr",
    "QuestionBatches",
    "ImageBatches",
    "generate_sort_of_clevr",
    "load_sort_of_clevr",
    "question_text",
    "object_region_mask",
    "cache_dir",
]

GENERATOR_VERSION = 1  # bump when generated data would change: invalidates caches

COLORS = ("red", "green", "blue", "orange", "gray", "yellow")
COLOR_RGB = {
    "red": (255, 0, 0),
    "green": (0, 255, 0),
    "blue": (0, 0, 255),
    "orange": (255, 156, 0),
    "gray": (128, 128, 128),
    "yellow": (255, 255, 0),
}
SHAPES = ("square", "circle")
ANSWERS = ("yes", "no", "square", "circle", "1", "2", "3", "4", "5", "6")
ANSWERS_TERNARY = ANSWERS + ("0",)
YES, NO, SQUARE = 0, 1, 2
QUESTION_TYPES = ("non-relational", "relational", "ternary")
SUBTYPE_NAMES = (
    ("shape", "left", "top"),
    ("closest shape", "furthest shape", "count same shape"),
    ("count between", "on the line", "count obtuse"),
)
#: Question families, indexed by ``family = 3 * qtype + subtype`` (items carry ``family``).
FAMILY_NAMES = tuple(name for names in SUBTYPE_NAMES for name in names)

#: Paraphrase templates per (question type, subtype); ``{a}`` and ``{b}`` are colours.
#: The **last** template of each list is held out: only the ``test_heldout`` split uses it.
TEMPLATES: dict[tuple[int, int], tuple[str, ...]] = {
    (0, 0): (
        "What is the shape of the {a} object?",
        "What shape is the {a} thing?",
        "Is the {a} object a square or a circle?",
        "Tell me the shape of the {a} item.",
        "Which shape does the {a} one have?",
    ),
    (0, 1): (
        "Is the {a} object on the left?",
        "Is the {a} thing in the left half of the image?",
        "Does the {a} item lie on the left side?",
        "Is the {a} shape left of the middle?",
        "Can the {a} object be found on the left?",
    ),
    (0, 2): (
        "Is the {a} object on the top?",
        "Is the {a} thing in the upper half of the image?",
        "Does the {a} item lie near the top?",
        "Is the {a} shape above the middle?",
        "Can the {a} object be found at the top?",
    ),
    (1, 0): (
        "What is the shape of the object closest to the {a} object?",
        "What shape is the thing nearest to the {a} one?",
        "Which shape is the closest neighbour of the {a} item?",
        "Tell me the shape of the object next to the {a} thing.",
        "What shape has the object that is nearest the {a} object?",
    ),
    (1, 1): (
        "What is the shape of the object furthest from the {a} object?",
        "What shape is the thing farthest from the {a} one?",
        "Which shape is the most distant object from the {a} item?",
        "Tell me the shape of the object far away from the {a} thing.",
        "What shape has the object that is furthest away from the {a} object?",
    ),
    (1, 2): (
        "How many objects have the same shape as the {a} object?",
        "How many things share the shape of the {a} one?",
        "Count the objects shaped like the {a} item.",
        "What is the number of objects with the {a} thing's shape?",
        "How many items are the same shape as the {a} object?",
    ),
    (2, 0): (
        "How many objects lie between the {a} object and the {b} object?",
        "How many things are inside the box spanned by the {a} one and the {b} one?",
        "Count the objects in the rectangle between the {a} item and the {b} item.",
        "What number of objects sit between the {a} thing and the {b} thing?",
        "How many items are located between the {a} object and the {b} object?",
    ),
    (2, 1): (
        "Is there an object on the line from the {a} object to the {b} object?",
        "Does anything lie on the segment between the {a} one and the {b} one?",
        "Is any object close to the line joining the {a} item and the {b} item?",
        "Is the straight path from the {a} thing to the {b} thing blocked?",
        "Does an object sit on the line connecting the {a} object and the {b} object?",
    ),
    (2, 2): (
        "How many objects make an obtuse angle with the {a} object and the {b} object?",
        "How many things form an obtuse angle at the {b} one, seen from the {a} one?",
        "Count the objects C for which the angle {a}-{b}-C is obtuse.",
        "What number of objects make the angle from {a} to {b} to them obtuse?",
        "How many items give an angle above 90 degrees at the {b} object, coming from the {a} object?",
    ),
}
SPLITS = ("train", "val", "test", "test_heldout")


def question_text(qtype: int, subtype: int, color_a: int, color_b: int = -1, template: int = 0) -> str:
    """Render one question from its template (colours by index into :data:`COLORS`;
    ``color_b`` only for ternary questions, ``-1`` otherwise)."""
    check_int("qtype", qtype, minimum=0, maximum=len(QUESTION_TYPES) - 1)
    check_int("subtype", subtype, minimum=0, maximum=2)
    templates = TEMPLATES[(qtype, subtype)]
    check_int("color_a", color_a, minimum=0, maximum=len(COLORS) - 1)
    check_int("color_b", color_b, minimum=0 if qtype == 2 else -1, maximum=len(COLORS) - 1)
    check_int("template", template, minimum=0, maximum=len(templates) - 1)
    return templates[template].format(a=COLORS[color_a], b=COLORS[color_b] if color_b >= 0 else "")


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
    seed: int = 0

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
        check_nonnegative_int("seed", self.seed)

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


# --------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------


def _has_distance_tie(centers: np.ndarray) -> bool:
    """True if some object's closest or furthest other object is not unique."""
    diff = centers[:, None, :] - centers[None, :, :]
    d2 = (diff**2).sum(-1)
    k = len(centers)
    for i in range(k):
        others = np.delete(d2[i], i)
        if (others == others.min()).sum() > 1 or (others == others.max()).sum() > 1:
            return True
    return False


def _place_objects(rng: np.random.Generator, config: SortOfClevrConfig) -> np.ndarray:
    """Integer centres (x, y) with disjoint bounding boxes and no distance ties."""
    s, k = config.object_size, config.num_objects
    min_gap = 2 * s + 1  # Chebyshev distance that keeps (2s+1)-pixel boxes disjoint
    for _ in range(1000):
        centers: list[np.ndarray] = []
        candidates = rng.integers(s, config.image_size - s, size=(64 * k, 2))
        for c in candidates:
            if all(np.abs(c - other).max() >= min_gap for other in centers):
                centers.append(c)
                if len(centers) == k:
                    break
        if len(centers) == k:
            placed = np.stack(centers)
            if not _has_distance_tie(placed):
                return placed
    raise RuntimeError(f"could not place {k} objects in a {config.image_size}px image; use a larger image_size")


def _stencils(size: int) -> dict[int, np.ndarray]:
    """Pixel masks, centred on a (2s+1)x(2s+1) patch: square side 2s, circle radius s."""
    offsets = np.arange(-size, size + 1)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    circle = dx**2 + dy**2 <= size**2
    square = (dx >= -size) & (dx < size) & (dy >= -size) & (dy < size)
    return {0: square, 1: circle}


def _render(centers: np.ndarray, shapes: np.ndarray, config: SortOfClevrConfig) -> np.ndarray:
    """uint8 images (N, 3, H, W): white background, object j in colour j."""
    n, k = shapes.shape
    s, size = config.object_size, config.image_size
    images = np.full((n, size, size, 3), 255, dtype=np.uint8)
    stencils = _stencils(s)
    rgb = np.array([COLOR_RGB[c] for c in COLORS], dtype=np.uint8)
    for i in range(n):
        for j in range(k):
            x, y = centers[i, j]
            patch = images[i, y - s : y + s + 1, x - s : x + s + 1]  # rows are y, columns are x
            patch[stencils[int(shapes[i, j])]] = rgb[j]
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2))


def _answers(centers: np.ndarray, shapes: np.ndarray, image_index, qtype, subtype, color_a, color_b, config):
    """Vectorized answers for all questions (indices into ``config.answers``)."""
    c = centers[image_index].astype(np.int64)  # (Q, k, 2)
    sh = shapes[image_index].astype(np.int64)  # (Q, k)
    q = np.arange(len(image_index))
    a = c[q, color_a]  # (Q, 2)
    answers = np.full(len(image_index), -1, dtype=np.int64)
    half = config.image_size / 2

    m = qtype == 0
    answers[m & (subtype == 0)] = SQUARE + sh[q, color_a][m & (subtype == 0)]
    answers[m & (subtype == 1)] = np.where(a[:, 0] < half, YES, NO)[m & (subtype == 1)]
    answers[m & (subtype == 2)] = np.where(a[:, 1] < half, YES, NO)[m & (subtype == 2)]

    d2 = ((c - a[:, None, :]) ** 2).sum(-1).astype(np.float64)  # (Q, k)
    own = np.zeros_like(d2, dtype=bool)
    own[q, color_a] = True
    closest = np.where(own, np.inf, d2).argmin(1)
    furthest = np.where(own, -np.inf, d2).argmax(1)
    same = (sh == sh[q, color_a][:, None]).sum(1)
    m = qtype == 1
    answers[m & (subtype == 0)] = (SQUARE + sh[q, closest])[m & (subtype == 0)]
    answers[m & (subtype == 1)] = (SQUARE + sh[q, furthest])[m & (subtype == 1)]
    answers[m & (subtype == 2)] = (3 + same)[m & (subtype == 2)]  # "1" is index 4

    m = qtype == 2
    if m.any():
        zero = len(ANSWERS)  # "0" is appended after "6"
        b = c[q, np.maximum(color_b, 0)]
        others = ~own
        others[q, np.maximum(color_b, 0)] = False
        lo, hi = np.minimum(a, b)[:, None, :], np.maximum(a, b)[:, None, :]
        between = (((c >= lo) & (c <= hi)).all(-1) & others).sum(1)
        ab = (b - a)[:, None, :]
        ac = c - a[:, None, :]
        t = (ac * ab).sum(-1)
        ab2 = (ab**2).sum(-1)
        cross = ab[..., 0] * ac[..., 1] - ab[..., 1] * ac[..., 0]
        s2 = config.object_size**2
        # distance from C to the segment AB < object_size, in exact integer arithmetic
        near_segment = np.where(
            t <= 0,
            (ac**2).sum(-1) < s2,
            np.where(t >= ab2, ((c - b[:, None, :]) ** 2).sum(-1) < s2, cross**2 < s2 * ab2),
        )
        on_line = (near_segment & others).any(1)
        obtuse = ((((a - b)[:, None, :] * (c - b[:, None, :])).sum(-1) < 0) & others).sum(1)

        def count_answer(n):
            return np.where(n == 0, zero, 3 + n)

        answers[m & (subtype == 0)] = count_answer(between)[m & (subtype == 0)]
        answers[m & (subtype == 1)] = np.where(on_line, YES, NO)[m & (subtype == 1)]
        answers[m & (subtype == 2)] = count_answer(obtuse)[m & (subtype == 2)]
    return answers


def _check_config(config) -> None:
    if not isinstance(config, SortOfClevrConfig):
        raise TypeError(f"config={config!r}: expected a SortOfClevrConfig")


def generate_sort_of_clevr(config: SortOfClevrConfig) -> dict[str, np.ndarray]:
    """Generate every split. Returns plain arrays (images uint8 ``(N, 3, H, W)``, one row
    per question for the question arrays); deterministic for a given config."""
    _check_config(config)
    rng = np.random.default_rng(config.seed)
    n_images = config.n_train + config.n_val + config.n_test
    k = config.num_objects
    centers = np.stack([_place_objects(rng, config) for _ in range(n_images)]).astype(np.int16)
    shapes = rng.integers(0, 2, size=(n_images, k)).astype(np.int8)
    images = _render(centers, shapes, config)

    per_type = config.questions_per_type
    n_types = config.question_types
    image_index = np.repeat(np.arange(n_images), n_types * per_type)
    qtype = np.tile(np.repeat(np.arange(n_types), per_type), n_images)
    n_q = len(image_index)
    subtype = rng.integers(0, 3, size=n_q)
    color_a = rng.integers(0, k, size=n_q)
    # colour B differs from A: draw from the k - 1 others
    color_b = (color_a + rng.integers(1, k, size=n_q)) % k
    color_b = np.where(qtype == 2, color_b, -1)
    n_templates = np.array([len(TEMPLATES[(int(t), int(s))]) for t, s in zip(qtype, subtype, strict=True)])
    template = (rng.random(n_q) * (n_templates - 1)).astype(np.int64)  # never the held-out last one
    answers = _answers(centers, shapes, image_index, qtype, subtype, color_a, color_b, config)
    split_of_image = np.repeat(np.arange(3), [config.n_train, config.n_val, config.n_test])
    return {
        "images": images,
        "centers": centers,
        "shapes": shapes,
        "image_split": split_of_image.astype(np.int8),
        "image_index": image_index.astype(np.int64),
        "qtype": qtype.astype(np.int8),
        "subtype": subtype.astype(np.int8),
        "color_a": color_a.astype(np.int8),
        "color_b": color_b.astype(np.int8),
        "template": template.astype(np.int8),
        "answer": answers.astype(np.int8),
    }


# --------------------------------------------------------------------------------
# Cache: data/cache/ (git-ignored), keyed by every parameter, verified on load
# --------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where generated data is cached: ``$MMTUTORIAL_CACHE``, else the repository's
    ``data/cache/`` when running from a checkout, else ``~/.cache/mmtutorial``."""
    if os.environ.get("MMTUTORIAL_CACHE"):
        return Path(os.environ["MMTUTORIAL_CACHE"])
    repo_data = Path(__file__).resolve().parents[2] / "data"
    if repo_data.is_dir():
        return repo_data / "cache"
    return Path.home() / ".cache" / "mmtutorial"


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(arrays):
        digest.update(name.encode())
        digest.update(str(arrays[name].dtype).encode() + str(arrays[name].shape).encode())
        digest.update(np.ascontiguousarray(arrays[name]).tobytes())
    return digest.hexdigest()


def _read_cache(path: Path, config: SortOfClevrConfig) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (with a warning) if stale or corrupted; None without a
    warning if there is no cache file (``_write_cache`` says why it cannot write one)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            meta = json.loads(str(stored["__meta__"]))
            arrays = {name: stored[name] for name in stored.files if name != "__meta__"}
        expected = {"version": GENERATOR_VERSION, "config": asdict(config)}
        if {"version": meta.get("version"), "config": meta.get("config")} != expected:
            warnings.warn(f"stale Sort-of-CLEVR cache {path.name} (other version or parameters): rebuilding", stacklevel=4)
            return None
        if meta.get("checksum") != _checksum(arrays):
            warnings.warn(f"corrupted Sort-of-CLEVR cache {path.name} (checksum mismatch): rebuilding", stacklevel=4)
            return None
        return arrays
    except Exception as error:  # truncated zip, bad JSON, missing arrays ...
        warnings.warn(f"unreadable Sort-of-CLEVR cache {path.name} ({type(error).__name__}): rebuilding", stacklevel=4)
        return None


def _process_alive(pid: int, tmp: Path) -> bool:
    if os.name != "posix":  # os.kill(pid, 0) would terminate the process on Windows: go by age
        return time.time() - tmp.stat().st_mtime < 3600
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _remove_stale_temp_files(path: Path) -> None:
    """Remove the ``.NAME.<pid>.tmp`` files that killed writes (of dead processes) left."""
    try:
        for tmp in path.parent.glob(f".{path.name}.*.tmp"):
            pid = tmp.name[len(path.name) + 2 : -len(".tmp")]
            if pid.isdigit() and int(pid) != os.getpid() and not _process_alive(int(pid), tmp):
                tmp.unlink(missing_ok=True)
    except OSError:  # no folder, or not a folder: nothing to clean
        pass


def _write_cache(path: Path, config: SortOfClevrConfig, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache file (to a temporary file, then rename: never half a file). A cache
    that cannot be written (read-only folder, a file or folder in the way) is not an
    error: the data stay in memory, with one warning."""
    meta = {"version": GENERATOR_VERSION, "config": asdict(config), "checksum": _checksum(arrays)}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, __meta__=np.array(json.dumps(meta)), **arrays)
        os.replace(tmp, path)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        warnings.warn(
            f"cannot write the Sort-of-CLEVR cache {path} ({reason}): the data stay in memory only "
            "(set MMTUTORIAL_CACHE to a writable folder to keep them)",
            stacklevel=5,
        )
    finally:
        try:
            tmp.unlink(missing_ok=True)  # after a failed write (a successful one renamed it)
        except OSError:
            pass


def load_sort_of_clevr(config: SortOfClevrConfig, use_cache: bool = True) -> dict[str, np.ndarray]:
    """Arrays for ``config``: from memory, from the disk cache, or freshly generated
    (then cached). Also reports how long generation took in ``arrays["__seconds__"]``.
    ``load_sort_of_clevr.cache_clear()`` empties the in-memory cache."""
    _check_config(config)
    check_bool("use_cache", use_cache)
    return _load_sort_of_clevr(config, use_cache)


@lru_cache(maxsize=4)
def _load_sort_of_clevr(config: SortOfClevrConfig, use_cache: bool) -> dict[str, np.ndarray]:
    path = cache_dir() / f"sort_of_clevr-{config.key()}.npz"
    if use_cache:
        _remove_stale_temp_files(path)
    arrays = _read_cache(path, config) if use_cache else None
    if arrays is None:
        start = time.perf_counter()
        arrays = generate_sort_of_clevr(config)
        seconds = time.perf_counter() - start
        if use_cache:
            _write_cache(path, config, arrays)
        arrays["__seconds__"] = np.array(seconds)
    for array in arrays.values():
        array.setflags(write=False)  # shared between datasets: nobody may modify it
    return arrays


load_sort_of_clevr.cache_clear = _load_sort_of_clevr.cache_clear


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
        **config: fields of :class:`SortOfClevrConfig` (sizes, ``ternary``, ``seed`` ...).

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
            raise TypeError(f"unknown SortOfClevr option(s) {unknown}: expected split, tokenizer, use_cache "
                            f"or fields of SortOfClevrConfig {sorted(known)}")
        if tokenizer is not None and not isinstance(tokenizer, str) and not callable(tokenizer):
            raise TypeError(f"tokenizer={tokenizer!r}: expected 'minilm', 'words', a model name or path, "
                            "a tokenizer object, or None")
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
            {"color": COLORS[j], "shape": SHAPES[int(self.shapes[i, j])], "x": int(self.centers[i, j, 0]), "y": int(self.centers[i, j, 1])}
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
            out["input_ids"], out["attention_mask"] = pad_token_ids([item["input_ids"] for item in batch], self.pad_token_id)
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
        }
        if self.tokenizer is not None:
            ids, mask = pad_token_ids([torch.tensor(t) for t in self._token_ids], self.pad_token_id)
            text_id = torch.from_numpy(self._text_id.astype(np.int64))
            tensors["input_ids"], tensors["attention_mask"] = ids[text_id], mask[text_id]
        return tensors

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None,
                device: torch.device | str = "cpu", by_image: bool = False,
                question_types: tuple[int, ...] | None = None) -> QuestionBatches | ImageBatches:
        """Batches straight from tensors held on ``device`` (no per-sample Python, no
        DataLoader): the fast path on CPU and the GPU-resident path on a GPU.

        With ``by_image=True`` a batch is ``batch_size`` *images* with all their questions
        (see :class:`ImageBatches`), so a model encodes each image once, not once per
        question. ``question_types`` keeps only those types (e.g. ``(0,)``: non-relational).
        """
        device = check_device("device", device)
        if question_types is not None:
            if not isinstance(question_types, (list, tuple)):
                raise TypeError(f"question_types={question_types!r}: expected a tuple of question types, e.g. (0,)")
            unknown = set(question_types) - set(range(self.config.question_types))
            if unknown:
                raise ValueError(f"question_types={question_types!r}: expected values in "
                                 f"0..{self.config.question_types - 1} ({', '.join(QUESTION_TYPES[:self.config.question_types])})")
        tensors = self.as_tensors()
        if question_types is not None:
            keep = torch.isin(tensors["qtype"], torch.tensor(question_types))
            tensors = {k: (v if k == "images" else v[keep]) for k, v in tensors.items()}
        batches = ImageBatches if by_image else QuestionBatches
        return batches(tensors, batch_size, shuffle, generator, device)

    def __repr__(self) -> str:
        return (
            f"SortOfClevr(split={self.split!r}, questions={len(self)}, images={len(np.unique(self.image_index))}, "
            f"answers={len(self.answers)}, tokenizer={type(self.tokenizer).__name__ if self.tokenizer else None})"
        )


class QuestionBatches:
    """Re-iterable batches of a :meth:`SortOfClevr.as_tensors` dict moved to ``device``.

    The question rows are batched by :class:`mmtutorial.train.TensorBatches`; each batch
    also gets ``image`` (float in [0, 1], gathered from the uint8 images by
    ``image_index``), so a model sees the same keys as with ``collate``.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], batch_size: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> None:
        require_keys(tensors, ("images", "image_index"), reader="QuestionBatches")
        rows = {k: v.to(device) for k, v in tensors.items()}
        self.images = rows.pop("images")
        self.rows = TensorBatches(rows, batch_size, shuffle=shuffle, generator=generator)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        for batch in self.rows:
            batch["image"] = self.images[batch["image_index"]].float() / 255.0
            yield batch


class ImageBatches:
    """Re-iterable batches of whole images, each with all its (kept) questions.

    A batch holds ``images`` ``(B_images, 3, H, W)`` float in [0, 1] and one row per
    question with the usual keys plus ``image_row``: the position of that question's
    image in ``images``. A model encodes ``images`` once and gathers the result with
    ``image_row``: with 10–20 questions per image that is 10–20x fewer image-encoder
    passes than one image per question, the dominant cost of training on a CPU.
    """

    def __init__(self, tensors: dict[str, torch.Tensor], images_per_batch: int, shuffle: bool = False,
                 generator: torch.Generator | None = None, device: torch.device | str = "cpu") -> None:
        check_positive_int("images_per_batch", images_per_batch)
        require_keys(tensors, ("images", "image_index"), reader="ImageBatches")
        rows = {k: v.to(device) for k, v in tensors.items()}
        self.images = rows.pop("images")
        # sort the questions by image once, so a batch's rows are contiguous runs
        order = torch.argsort(rows["image_index"], stable=True)
        self.rows = {k: v[order] for k, v in rows.items()}
        counts = torch.bincount(self.rows["image_index"], minlength=len(self.images))
        self.image_ids = torch.nonzero(counts).flatten()  # images that have kept questions
        self.starts = torch.cumsum(counts, 0) - counts
        self.counts = counts
        self.images_per_batch, self.shuffle, self.generator = images_per_batch, shuffle, generator

    def __len__(self) -> int:
        return -(-len(self.image_ids) // self.images_per_batch)

    def __iter__(self):
        n = len(self.image_ids)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        order = order.to(self.image_ids.device)
        for start in range(0, n, self.images_per_batch):
            chosen = self.image_ids[order[start : start + self.images_per_batch]]
            counts = self.counts[chosen]
            # row indices of every question of every chosen image, image by image
            image_row = torch.repeat_interleave(torch.arange(len(chosen), device=chosen.device), counts)
            first_in_batch = torch.cumsum(counts, 0) - counts
            shift = (self.starts[chosen] - first_in_batch)[image_row]
            index = torch.arange(len(image_row), device=chosen.device) + shift
            batch = {k: v[index] for k, v in self.rows.items()}
            batch["images"] = self.images[chosen].float() / 255.0
            batch["image_row"] = image_row
            yield batch


def object_region_mask(centers: torch.Tensor, grid: int = 5, image_size: int = 75, object_size: int = 5
                       ) -> torch.Tensor:
    """Which cells of a ``grid x grid`` region map overlap each object's bounding box.

    ``centers`` is ``(B, 2)`` integer (x, y) pixel centres (e.g. ``dataset.centers[image,
    colour]``); returns ``(B, grid * grid)`` booleans, row by row, like the regions of
    :class:`mmtutorial.encoders.ConvRegionEncoder`. Summing an attention map over the mask
    measures how much attention lands on the object; ``mask.sum(1) / grid**2`` is what a
    uniform map would put there.
    """
    check_tensor("centers", centers, layout="(batch, 2)")
    if centers.dim() != 2 or centers.shape[1] != 2:
        raise ValueError(f"expected centers of shape (batch, 2), got {tuple(centers.shape)}")
    check_positive_int("grid", grid)
    check_positive_int("image_size", image_size)
    check_nonnegative_int("object_size", object_size)
    cell = image_size / grid
    edges = torch.arange(grid, device=centers.device) * cell
    x, y = centers[:, :1].float(), centers[:, 1:].float()
    # the object covers pixels [c - s, c + s]; a cell covers [edge, edge + cell)
    cols = (edges < x + object_size + 1) & (edges + cell > x - object_size)
    rows = (edges < y + object_size + 1) & (edges + cell > y - object_size)
    return (rows[:, :, None] & cols[:, None, :]).flatten(1)


def pad_token_ids(sequences: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D id tensors to one ``(B, L_max)`` tensor plus a boolean mask (True = token);
    no sequences give ``(0, 0)``."""
    for i, seq in enumerate(sequences):
        check_tensor(f"sequences[{i}]", seq, dtype="int", dims=1, layout="(length,)")
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    longest = int(lengths.max()) if len(sequences) else 0
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, : len(seq)] = seq
    mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
    return ids, mask
