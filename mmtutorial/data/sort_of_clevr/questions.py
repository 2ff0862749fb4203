"""The questions: colours, shapes, answers, question families and the paraphrase
templates (the last template of each family is held out for the ``test_heldout`` split)."""

from __future__ import annotations

from ...validation import (
    check_int,
)

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
