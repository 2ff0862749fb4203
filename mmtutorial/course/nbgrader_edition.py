"""The nbgrader edition: the course as an nbgrader course directory, for JupyterHub classes.

Built from the same committed notebooks as the student and solutions editions
(:mod:`mmtutorial.course.classroom`), one **assignment per notebook** (a lesson is what a
class works through in one sitting, so it is what an instructor releases, collects and
grades; each has its own grade)::

    OUT/nbgrader_config.py                 course id, cell timeout, headless settings
    OUT/source/01_attention_as_soft_lookup/01_attention_as_soft_lookup.ipynb
    OUT/source/10_experiments_with_papermill/experiments/...   (folders a notebook uses)

Each source notebook carries nbgrader's cell metadata (schema version 3):

* an exercise's solution cell is an **autograded answer** (``solution``): each function keeps
  its signature and docstring, then a comment with the exercise and its hint, then its body
  between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, which ``nbgrader
  generate_assignment`` replaces with its stub (``raise NotImplementedError()``);
* the exercise's self-check cells are **autograder tests** (``grade``, locked) worth
  :data:`POINTS_PER_EXERCISE` point per exercise, headed by a comment naming the exercise
  and its hint, so the hint is in the student's notebook and in the feedback;
* every other cell of the lesson is **read-only** (``locked``);
* the solution notes (markdown tagged ``solution``) are left out: they stay in the
  solutions edition, for the instructor.

``nbgrader generate_assignment`` and ``nbgrader autograde`` then work on ``OUT`` unchanged;
nothing here imports nbgrader. Writing into an existing ``OUT`` (made by this function)
replaces only the source folders of the notebooks written: the gradebook, the other
assignments, releases and submissions are kept.
"""

from __future__ import annotations

import ast
import copy
import io
import re
import shutil
import textwrap
import tokenize
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

from ..outputs import OutputFolderError, atomic_write_text, prepare_output_folder

if TYPE_CHECKING:  # the exercises come from classroom.find_exercises, whose CLI calls this module
    from .classroom import Exercise

__all__ = [
    "SCHEMA_VERSION",
    "POINTS_PER_EXERCISE",
    "BEGIN_SOLUTION",
    "END_SOLUTION",
    "solution_regions",
    "nbgrader_source",
    "write_nbgrader_course",
    "NBGRADER_CONFIG",
]

SCHEMA_VERSION = 3  # nbgrader's cell metadata schema (nbgrader/nbgraderformat/v3.json)
POINTS_PER_EXERCISE = 1
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
_GRADE_ID = re.compile(r"^[a-zA-Z0-9_\-]+$")  # nbgrader's pattern for grade ids

#: ``OUT/nbgrader_config.py``, written when missing (an instructor's edits are kept).
NBGRADER_CONFIG = """\
# nbgrader configuration of the mmtutorial course, written by
# `python -m mmtutorial.course.classroom --nbgrader OUT` (kept when it already exists).
import os

c = get_config()  # noqa: F821 - nbgrader provides get_config

c.CourseDirectory.course_id = "mmtutorial"

# Training cells take minutes on a CPU; nbgrader's default is 30 s per cell.
c.Execute.timeout = 1800

# The autograder runs the notebooks headless: text progress bars and static explorer
# figures instead of widgets, and smoke mode (small data, few epochs, well under a minute
# per notebook), which the exercises' self-checks do not depend on. Delete the last line
# to grade full-size runs.
os.environ.setdefault("MMTUTORIAL_TEXT_PROGRESS", "1")
os.environ.setdefault("MMTUTORIAL_STATIC_WIDGETS", "1")
os.environ.setdefault("MMTUTORIAL_SMOKE", "1")
"""


def _metadata(grade_id: str, *, grade: bool = False, solution: bool = False, locked: bool = False, points=None):
    meta: dict[str, Any] = {
        "grade": grade,
        "grade_id": grade_id,
        "locked": locked,
        "schema_version": SCHEMA_VERSION,
        "solution": solution,
    }
    if grade:
        meta["points"] = points
    return meta


def _label(exercise: Exercise) -> str:
    return f"Exercise {exercise.number}" + (f" ({exercise.title})" if exercise.title else "")


def _hint_comment(exercise: Exercise, indent: str, lead: str = "") -> list[str]:
    text = f"{_label(exercise)}{lead}." + (f" Hint: {exercise.hint}" if exercise.hint else "")
    return [indent + "# " + line for line in textwrap.wrap(text, width=max(40, 88 - len(indent)))]


def _header_end(lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    """(line, column) just after the colon that ends ``node``'s ``def ...:`` (1-based line)."""
    source = "\n".join(lines[node.lineno - 1 : node.body[0].end_lineno]) + "\n"
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif token.type == tokenize.OP and token.string == ":" and depth == 0:
            return node.lineno + token.end[0] - 1, token.end[1]
    raise ValueError(f"could not find the end of the signature of {node.name}()")  # pragma: no cover


def solution_regions(solution: str, exercise: Exercise) -> str:
    """The solution cell with every answer between ``### BEGIN SOLUTION`` and ``### END SOLUTION``.

    Imports stay; each top-level function keeps its decorators, signature and docstring,
    gets a comment with the exercise and its hint, and its body goes in a region;
    anything else at the top level (the answer of a cell without functions) goes in a
    region of its own. Comments between statements stay where they are.
    """
    tree = ast.parse(solution)
    lines = solution.splitlines()
    out: list[str] = []
    done = 0  # lines[:done] are emitted
    pending: list[str] = []  # top-level answer lines waiting for their region

    def flush() -> None:
        if pending:
            out.extend([*_hint_comment(exercise, ""), BEGIN_SOLUTION, *pending, END_SOLUTION])
            pending.clear()

    for node in tree.body:
        start = (node.decorator_list[0].lineno if getattr(node, "decorator_list", None) else node.lineno) - 1
        gap = lines[done:start]
        if isinstance(node, ast.Import | ast.ImportFrom):
            flush()
            out.extend(gap + lines[start : node.end_lineno])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            flush()
            out.extend(gap)
            body = node.body
            if ast.get_docstring(node) is not None:
                keep_until, rest = body[0].end_lineno, body[1:]
                indent = " " * body[0].col_offset
                out.extend(lines[start:keep_until])
                answer = lines[keep_until : node.end_lineno]
                if not rest:  # a docstring only: the answer is to write the body
                    answer = []
            else:
                line, column = _header_end(lines, node)
                indent = " " * (body[0].col_offset if body[0].lineno > line else node.col_offset + 4)
                if body[0].lineno == line:  # ``def f(x): return x``: split the one line
                    out.extend(lines[start : line - 1] + [lines[line - 1][:column]])
                    answer = [indent + lines[line - 1][column:].strip(), *lines[line : node.end_lineno]]
                else:
                    out.extend(lines[start:line])
                    answer = lines[line : node.end_lineno]
            out.extend(_hint_comment(exercise, indent))
            out.extend([indent + BEGIN_SOLUTION, *answer, indent + END_SOLUTION])
        else:
            pending.extend(gap + lines[start : node.end_lineno])
        done = node.end_lineno
    flush()
    out.extend(lines[done:])
    return "\n".join(out)


def _grade_id(cell: dict, index: int) -> str:
    cell_id = str(cell.get("id", ""))
    return f"lesson-{cell_id}" if _GRADE_ID.match(cell_id) else f"lesson-{index}"


def nbgrader_source(
    notebook: nbformat.NotebookNode, exercises: Sequence[Exercise], solution_tag: str = "solution"
) -> nbformat.NotebookNode:
    """``notebook`` with nbgrader's cell metadata: solution cells with solution regions,
    self-checks as autograded tests, the solution notes (markdown tagged ``solution_tag``)
    left out, everything else read-only (see the module). ``exercises`` are the
    notebook's, as :func:`mmtutorial.course.classroom.find_exercises` finds them."""
    by_solution = {e.cell: e for e in exercises}
    by_check = {i: (e, k) for e in exercises for k, i in enumerate(e.check_cells)}
    source = copy.deepcopy(notebook)
    cells = []
    for index, cell in enumerate(source.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "markdown" and solution_tag in tags:
            continue  # solution notes: the solutions edition keeps them
        if index in by_solution:
            exercise = by_solution[index]
            cell["source"] = solution_regions(cell["source"], exercise)
            cell["metadata"].get("jupyter", {}).pop("source_hidden", None)  # the answer cell must be visible
            if not cell["metadata"].get("jupyter", True):
                del cell["metadata"]["jupyter"]
            cell["metadata"]["nbgrader"] = _metadata(f"exercise{exercise.number}-answer", solution=True)
        elif index in by_check:
            exercise, k = by_check[index]
            points = POINTS_PER_EXERCISE if k == 0 else 0
            heading = _hint_comment(exercise, "", lead=f", autograded: {points} point{'s' * (points != 1)}")
            cell["source"] = "\n".join([*heading, cell["source"]])
            suffix = "" if k == 0 else f"-{k + 1}"
            cell["metadata"]["nbgrader"] = _metadata(
                f"exercise{exercise.number}-check{suffix}", grade=True, locked=True, points=points
            )
        else:
            cell["metadata"]["nbgrader"] = _metadata(_grade_id(cell, index), locked=True)
        cells.append(cell)
    source.cells = cells
    source.metadata.setdefault("mmtutorial", {})["edition"] = "nbgrader"
    return source


def write_nbgrader_course(
    notebooks: Mapping[Path, nbformat.NotebookNode],
    exercises: Mapping[Path, Sequence[Exercise]],
    out: str | Path = "build/nbgrader",
    solution_tag: str = "solution",
) -> Path:
    """Write an nbgrader course directory under ``out`` (see the module): one assignment
    per notebook (``notebooks`` maps each notebook's path to its contents, ``exercises``
    to its exercises), with the folders next to a notebook that its code names (such as
    ``experiments/``, which notebook 10 sweeps).

    ``out`` must be new, empty or made by this function before
    (:func:`mmtutorial.outputs.prepare_output_folder`); only the written assignments'
    folders under ``source/`` are replaced, and ``nbgrader_config.py`` is written when
    missing. Returns ``out``.
    ``python -m mmtutorial.course.classroom --nbgrader OUT`` calls it.
    """
    sources = {Path(path): nbgrader_source(nb, exercises[path], solution_tag) for path, nb in notebooks.items()}
    try:
        out = prepare_output_folder(out, "classroom --nbgrader")  # refuses a folder it did not make
    except OutputFolderError as error:  # name the option the user gave
        raise OutputFolderError(str(error).replace("--out ", "--nbgrader ", 1)) from None
    for path, source in sources.items():
        assignment = out / "source" / path.stem
        if assignment.exists():
            shutil.rmtree(assignment)
        assignment.mkdir(parents=True)
        nbformat.write(source, assignment / path.name)
        code = "".join(cell["source"] for cell in source.cells if cell["cell_type"] == "code")
        for sub in sorted(path.parent.iterdir()):
            named = re.search(rf"[\"']{re.escape(sub.name)}[\"'/]", code)
            if sub.is_dir() and not sub.name.startswith((".", "_")) and named:
                shutil.copytree(sub, assignment / sub.name, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    if not (out / "nbgrader_config.py").exists():
        atomic_write_text(out / "nbgrader_config.py", NBGRADER_CONFIG)
    return out
