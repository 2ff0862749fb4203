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

The package, one module per job: :mod:`.questions` (colours, answers, question families,
paraphrase templates), :mod:`.config` (:class:`SortOfClevrConfig`), :mod:`.generate`
(scenes, images, answers), :mod:`.cache` (the disk cache), :mod:`.dataset`
(:class:`SortOfClevr`), :mod:`.batches` (question and whole-image batches) and
:mod:`.regions` (which grid cells an object covers, which regions' receptive fields see it,
and attention maps drawn on the pixels the regions see).
"""

from .batches import ImageBatches, QuestionBatches, pad_token_ids
from .cache import cache_dir, load_sort_of_clevr
from .config import SortOfClevrConfig
from .dataset import SortOfClevr
from .generate import answer_questions, generate_sort_of_clevr
from .questions import (
    ANSWERS,
    COLOR_RGB,
    COLORS,
    FAMILY_NAMES,
    QUESTION_TYPES,
    SHAPES,
    SPLITS,
    SUBTYPE_NAMES,
    TEMPLATES,
    question_text,
)
from .regions import attention_density, object_region_mask, regions_seeing_object

__all__ = [
    "COLORS",
    "COLOR_RGB",
    "SHAPES",
    "ANSWERS",
    "QUESTION_TYPES",
    "SUBTYPE_NAMES",
    "FAMILY_NAMES",
    "TEMPLATES",
    "SPLITS",
    "SortOfClevrConfig",
    "SortOfClevr",
    "QuestionBatches",
    "ImageBatches",
    "generate_sort_of_clevr",
    "load_sort_of_clevr",
    "answer_questions",
    "question_text",
    "object_region_mask",
    "regions_seeing_object",
    "attention_density",
    "cache_dir",
    "pad_token_ids",
]
