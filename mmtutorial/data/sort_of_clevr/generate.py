"""Generation: objects placed without overlap or distance ties, images rendered, every
question answered from the scene (vectorized)."""

from __future__ import annotations

import numpy as np

from .config import SortOfClevrConfig
from .questions import ANSWERS, COLOR_RGB, COLORS, NO, SQUARE, TEMPLATES, YES

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


def answer_questions(centers: np.ndarray, shapes: np.ndarray, image_index, qtype, subtype, color_a, color_b, config):
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
    rng = np.random.default_rng(config.data_seed)
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
    answers = answer_questions(centers, shapes, image_index, qtype, subtype, color_a, color_b, config)
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
