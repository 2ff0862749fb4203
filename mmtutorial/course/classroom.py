"""Student and instructor editions of the course, built from the committed notebooks.

One source per notebook. An exercise is a code cell tagged ``solution`` (hidden in
JupyterLab by ``jupyter.source_hidden``), followed by a cell that calls its self-check
from :mod:`mmtutorial.course.checks`; a markdown cell tagged ``solution`` is prose that
discusses the answer. From that source:

* the **student edition** replaces each solution function by a stub with the same
  signature whose body raises ``NotImplementedError`` with a hint, drops the solution
  prose and clears the outputs of the solution and self-check cells (the rest of the
  lesson keeps its outputs, so it can be read before it is run);
* the **solutions edition** is the notebook as committed.

``python -m mmtutorial.course.classroom`` (``make classroom``) writes both, plus an exercise
list per notebook (``exercises.md`` and ``exercises.json``)::

    build/classroom/student/NN_name.ipynb
    build/classroom/solutions/NN_name.ipynb
    build/classroom/exercises.md

``python -m mmtutorial.course.classroom --nbgrader OUT`` writes an nbgrader course
directory from the same notebooks instead (:mod:`mmtutorial.course.nbgrader_edition`).
"""

from __future__ import annotations

import ast
import copy
import re
import shutil
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nbformat

from ..cli import ArgumentParser
from ..outputs import atomic_write_json, atomic_write_text, prepare_output_folder
from .nbgrader_edition import write_nbgrader_course

__all__ = [
    "SOLUTION_TAG",
    "Exercise",
    "find_exercises",
    "stub_source",
    "student_edition",
    "self_test_edition",
    "solution_leaks",
    "SELF_TEST_TAG",
    "build_classroom",
    "read_notebook",
    "coverage_table",
    "main",
]

SOLUTION_TAG = "solution"
EDITIONS = ("student", "solutions")
_CHECK_CALL = re.compile(r"\bchecks\.(check_\w+)\s*\(")
_EXERCISE_HEADING = re.compile(r"^#+\s*Exercise\s+(\d+)\s*:\s*(.+?)\s*$", re.M)
_HINT = re.compile(r"\*Hint:\*\s*(.+?)(?:\n\s*\n|\Z)", re.S)


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook, as found in its cells."""

    notebook: str
    number: int
    title: str
    functions: tuple[str, ...]
    checks: tuple[str, ...]
    hint: str
    cell: int  # index of the solution cell in the notebook
    check_cells: tuple[int, ...]  # indices of the self-check cells right after it

    @property
    def self_checked(self) -> bool:
        return bool(self.checks)


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _is_solution_code(cell: dict[str, Any]) -> bool:
    return cell["cell_type"] == "code" and SOLUTION_TAG in _tags(cell)


def _defined_functions(source: str) -> tuple[str, ...]:
    return tuple(n.name for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef))


def _check_cells(cells: list[dict[str, Any]], start: int) -> tuple[int, ...]:
    """Indices of the code cells right after a solution that call a self-check."""
    found: list[int] = []
    for index in range(start, len(cells)):
        cell = cells[index]
        if cell["cell_type"] != "code" or SOLUTION_TAG in _tags(cell):
            break
        if not _CHECK_CALL.search(cell["source"]):
            break
        found.append(index)
    return tuple(found)


def find_exercises(notebook: nbformat.NotebookNode, name: str = "") -> list[Exercise]:
    """The exercises of ``notebook``: one per code cell tagged ``solution``.

    The title and hint come from the closest markdown cell above with a heading
    ``Exercise N: title`` (and an optional ``*Hint:* ...`` paragraph); the self-checks
    are the ``checks.check_*`` calls in the code cells right after the solution.
    """
    cells = notebook.cells
    exercises: list[Exercise] = []
    for index, cell in enumerate(cells):
        if not _is_solution_code(cell):
            continue
        number, title, hint = len(exercises) + 1, "", ""
        for above in reversed(cells[:index]):
            if above["cell_type"] != "markdown":
                continue
            headings = _EXERCISE_HEADING.findall(above["source"])
            if headings:
                number, title = int(headings[-1][0]), headings[-1][1]
                found = _HINT.search(above["source"])
                hint = " ".join(found.group(1).split()) if found else ""
                break
        try:
            functions = _defined_functions(cell["source"])
        except SyntaxError as error:
            raise ValueError(
                f"{name or 'notebook'}, cell {index}: the solution is not valid Python: {error}"
            ) from error
        check_cells = _check_cells(cells, index + 1)
        checks = tuple(m for i in check_cells for m in _CHECK_CALL.findall(cells[i]["source"]))
        exercises.append(Exercise(name, number, title, functions, checks, hint, index, check_cells))
    return exercises


def _hint_sentence(exercise: Exercise) -> str:
    if not exercise.hint:
        return "The exercise text above says what it should return."
    return f"Hint: {exercise.hint[0].upper()}{exercise.hint[1:]}"


def stub_source(solution: str, exercise: Exercise) -> str:
    """The student's version of a solution cell.

    Each top-level function keeps its signature (and docstring) and gets a body that
    raises ``NotImplementedError`` with a hint; imports are kept; anything else in the
    cell is part of the answer and goes. A cell without functions becomes a single
    ``raise NotImplementedError``.
    """
    tree = ast.parse(solution)
    lines = solution.splitlines()
    check = f"checks.{exercise.checks[0]}" if exercise.checks else "the self-check"
    label = f"Exercise {exercise.number}" + (f" ({exercise.title})" if exercise.title else "")
    parts: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            parts.append("\n".join(lines[node.lineno - 1 : node.end_lineno]))
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body[0]
            header_end = body.end_lineno if ast.get_docstring(node) is not None else body.lineno - 1
            if body.lineno == node.lineno:  # one-line ``def f(x): return x``
                header = lines[body.lineno - 1][: body.col_offset].rstrip()
                indent = " " * (node.col_offset + 4)
            else:
                header = "\n".join(
                    lines[node.decorator_list[0].lineno - 1 if node.decorator_list else node.lineno - 1 : header_end]
                )
                indent = " " * body.col_offset
            message = f"{label}: write {node.name}() here. {_hint_sentence(exercise)}"
            message += f" Then run the next cell: {check} tests it."
            wrapped = textwrap.wrap(message, width=84 - len(indent))
            literal = ("\n" + indent + "    ").join(
                repr(part + " ") if i < len(wrapped) - 1 else repr(part) for i, part in enumerate(wrapped)
            )
            parts.append(
                f"{header}\n{indent}# Your code here: replace the line below.\n"
                f"{indent}raise NotImplementedError(\n{indent}    {literal}\n{indent})"
            )
    if not any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
        message = f"{label}: your code here. {_hint_sentence(exercise)} Then run the next cell: {check} tests it."
        parts.append(f"raise NotImplementedError({' '.join(message.split())!r})")
    return "\n\n\n".join(parts)


def student_edition(notebook: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """A copy of ``notebook`` with stubs for solutions, without solution prose, and
    with the outputs of the solution and self-check cells cleared."""
    exercises = {e.cell: e for e in find_exercises(notebook, name)}
    cleared = {i for e in exercises.values() for i in (e.cell, *e.check_cells)}
    student = copy.deepcopy(notebook)
    cells = []
    for index, cell in enumerate(student.cells):
        if cell["cell_type"] == "markdown" and SOLUTION_TAG in _tags(cell):
            continue  # solution prose
        if index in exercises:
            cell["source"] = stub_source(cell["source"], exercises[index])
            cell["metadata"].get("jupyter", {}).pop("source_hidden", None)  # the stub must be visible
            if not cell["metadata"].get("jupyter", True):
                del cell["metadata"]["jupyter"]
            cell["metadata"]["tags"] = [t for t in _tags(cell) if t != SOLUTION_TAG] + ["exercise"]
        if index in cleared:
            cell["outputs"], cell["execution_count"] = [], None
        cells.append(cell)
    student.cells = cells
    student.metadata.setdefault("mmtutorial", {})["edition"] = "student"
    return student


class _Anonymize(ast.NodeTransformer):
    """Every variable and argument name becomes ``v``: a copy with other names is still a copy."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Name("v", node.ctx), node)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        node.arg = "v"
        return node


def _code_pieces(source: str) -> tuple[set[str], set[str]]:
    """``(statements, expressions)`` of ``source`` at any depth, names anonymized, as code text."""
    try:
        tree = _Anonymize().visit(ast.parse(source))
    except SyntaxError:  # IPython magics: nothing to compare
        return set(), set()
    skip = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)
    statements = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.stmt) and not isinstance(n, skip)}
    expressions = {ast.unparse(n) for n in ast.walk(tree) if isinstance(n, ast.expr)}
    return statements, expressions


def _answer_pieces(source: str) -> set[str]:
    """What a solution computes: its statements and the values they return or assign."""
    statements, _ = _code_pieces(source)
    values = set()
    for node in ast.walk(_Anonymize().visit(ast.parse(source))):
        if isinstance(node, (ast.Return, ast.Assign, ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            values.add(ast.unparse(node.value))
    return statements | values


#: A solution statement or computed value at least this long (as code) that a lesson cell repeats is a leak.
LEAK_MIN_CHARS = 20


def solution_leaks(notebook: nbformat.NotebookNode, name: str = "") -> list[str]:
    """Statements of an exercise's solution that a lesson cell already shows (with any
    variable names): the answer on screen before the learner writes it. One line per leak."""
    exercises = find_exercises(notebook, name)
    own = {i for e in exercises for i in (e.cell, *e.check_cells)}
    lesson = {}
    for i, cell in enumerate(notebook.cells):
        if cell["cell_type"] == "code" and i not in own:
            statements, expressions = _code_pieces(cell["source"])
            lesson[i] = statements | expressions
    leaks = []
    for exercise in exercises:
        source = notebook.cells[exercise.cell]["source"]
        docstrings = {
            ast.unparse(n.body[0])
            for n in ast.walk(ast.parse(source))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and ast.get_docstring(n)
        }
        for piece in sorted(_answer_pieces(source) - docstrings):
            if len(piece) < LEAK_MIN_CHARS:
                continue
            shown = [i for i, pieces in lesson.items() if piece in pieces]
            if shown:
                leaks.append(
                    f"{name or 'notebook'}, exercise {exercise.number}: its solution's "
                    f"`{piece.splitlines()[0][:70]}` is shown in cell {shown[0]}"
                )
    return leaks


#: Tag of the cells :func:`self_test_edition` adds.
SELF_TEST_TAG = "self-test"


def self_test_edition(notebook: nbformat.NotebookNode, name: str = "") -> nbformat.NotebookNode:
    """``notebook`` with one cell added before each exercise's solution that tries the
    student's stub with the exercise's self-checks and requires them to stop with the
    stub's ``NotImplementedError`` (naming the exercise); the solution then runs as usual.

    One execution of this edition checks everything a student and an instructor meet:
    the lesson runs, every stub stops at its self-check with its hint, and every solution
    passes. The added cells are tagged :data:`SELF_TEST_TAG` and print a ✓ line.
    """
    exercises = {e.cell: e for e in find_exercises(notebook, name)}
    tested = copy.deepcopy(notebook)
    cells = []
    for index, cell in enumerate(tested.cells):
        exercise = exercises.get(index)
        if exercise is not None:
            tried = "\n".join(
                [stub_source(cell["source"], exercise), *(notebook.cells[i]["source"] for i in exercise.check_cells)]
            )
            label = f"Exercise {exercise.number}"
            source = "\n".join(
                [
                    f"# {SELF_TEST_TAG}: the student edition's stub for {label} must stop at its self-check",
                    "try:",
                    textwrap.indent(tried, "    "),
                    "except NotImplementedError as stopped:",
                    f"    assert {label!r} in str(stopped), stopped",
                    f"    print('✓ {label}: the student edition stops here:', str(stopped)[:70])",
                    "else:",
                    f"    raise AssertionError('{label}: the stub did not stop at the self-check')",
                ]
            )
            cells.append(nbformat.v4.new_code_cell(source, metadata={"tags": [SELF_TEST_TAG]}))
        cells.append(cell)
    tested.cells = cells
    return tested


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """``nbformat.read`` with one clear ``ValueError`` naming the file when it is not a notebook."""
    try:
        return nbformat.read(path, as_version=4)
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as error:  # NotJSONError is a ValueError
        why = str(error).strip().splitlines()[0][:100] if str(error).strip() else type(error).__name__
        raise ValueError(f"{path} is not a valid notebook ({why})") from None


def _notebook_paths(paths: Iterable[str | Path]) -> list[Path]:
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found.extend(sorted(path.glob("[0-9][0-9]_*.ipynb")))
        elif path.suffix == ".ipynb" and path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"not a notebook or a folder of notebooks: {path}")
    if not found:
        raise FileNotFoundError(f"no notebooks (NN_name.ipynb) in {[str(p) for p in paths]}")
    return found


def build_classroom(
    notebooks: Iterable[str | Path] = ("notebooks",), out: str | Path = "build/classroom"
) -> dict[str, list[Exercise]]:
    """Write the student and solutions editions of ``notebooks`` under ``out``.

    Folders next to the notebooks (such as ``experiments/``, which notebook 10
    sweeps) are copied into both editions so they run where they are written.
    Returns the exercises of each notebook, also written as ``exercises.md`` and
    ``exercises.json``. ``out`` must be new, empty or made by this function before
    (:func:`mmtutorial.outputs.prepare_output_folder`); it is emptied first.
    """
    paths = _notebook_paths(notebooks)
    notebooks_read = {path: read_notebook(path) for path in paths}  # every notebook is valid before writing
    out = prepare_output_folder(out, "classroom", clean=True)  # refuses a folder it did not make
    for edition in EDITIONS:
        (out / edition).mkdir()
    by_notebook: dict[str, list[Exercise]] = {}
    for path, notebook in notebooks_read.items():
        by_notebook[path.name] = find_exercises(notebook, path.name)
        nbformat.write(student_edition(notebook, path.name), out / "student" / path.name)
        shutil.copyfile(path, out / "solutions" / path.name)
    for folder in sorted({p.parent for p in paths}):
        for sub in folder.iterdir():
            if sub.is_dir() and not sub.name.startswith((".", "_")) and list(sub.glob("*.ipynb")):
                for edition in EDITIONS:
                    shutil.copytree(sub, out / edition / sub.name, ignore=shutil.ignore_patterns(".*"))
    atomic_write_text(out / "exercises.md", _exercise_list(by_notebook))
    atomic_write_json(
        out / "exercises.json",
        {name: [asdict(e) for e in exercises] for name, exercises in by_notebook.items()},
        indent=1,
    )
    return by_notebook


def _exercise_list(by_notebook: dict[str, list[Exercise]]) -> str:
    lines = ["# Exercises", "", "Each exercise: the function to write and the self-check that tests it.", ""]
    for name, exercises in by_notebook.items():
        lines.append(f"## {name}")
        lines.append("")
        for e in exercises:
            checks = ", ".join(f"`checks.{c}`" for c in e.checks) or "no self-check"
            functions = ", ".join(f"`{f}`" for f in e.functions) or "(no function)"
            lines.append(f"{e.number}. {e.title or 'untitled'}: {functions}; checked by {checks}")
        lines.append("")
    return "\n".join(lines)


def coverage_table(by_notebook: dict[str, list[Exercise]]) -> str:
    """The README's exercise coverage table: per notebook, how many exercises, how
    many have a self-check and how many a solution."""
    rows = ["| Notebook | Exercises | Self-checked | With solutions |", "| --- | --- | --- | --- |"]
    for name, exercises in by_notebook.items():
        solved = sum(bool(e.functions) for e in exercises)
        rows.append(f"| {name} | {len(exercises)} | {sum(e.self_checked for e in exercises)} | {solved} |")
    total = [e for exercises in by_notebook.values() for e in exercises]
    rows.append(
        f"| **all** | **{len(total)}** | **{sum(e.self_checked for e in total)}** | "
        f"**{sum(bool(e.functions) for e in total)}** |"
    )
    return "\n".join(rows)


def _write_nbgrader(notebooks: Sequence[str], out: str) -> int:
    """``--nbgrader OUT``: the nbgrader course directory, and what to run next."""
    paths = _notebook_paths(notebooks)
    read = {path: read_notebook(path) for path in paths}
    exercises = {path: find_exercises(notebook, path.name) for path, notebook in read.items()}
    folder = write_nbgrader_course(read, exercises, out, SOLUTION_TAG)
    count = sum(map(len, exercises.values()))
    print(f"{len(paths)} assignment{'s' * (len(paths) != 1)} (one per notebook), {count} autograded exercises")
    print(f"  source    {folder / 'source'}/")
    print(f"  config    {folder / 'nbgrader_config.py'}")
    print(f"next: cd {folder} && nbgrader generate_assignment {paths[0].stem}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m mmtutorial.course.classroom", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", default=["notebooks"], help="notebooks or folders (default: notebooks)")
    parser.add_argument("--out", default="build/classroom", help="output folder (default: build/classroom)")
    parser.add_argument("--table", action="store_true", help="print the README's coverage table and write nothing")
    parser.add_argument(
        "--nbgrader",
        metavar="OUT",
        help="write an nbgrader course directory to OUT instead (source/<assignment>/, one per notebook)",
    )
    args = parser.parse_args(argv)
    try:
        if args.table:
            paths = _notebook_paths(args.notebooks)
            print(coverage_table({p.name: find_exercises(read_notebook(p), p.name) for p in paths}))
            return 0
        if args.nbgrader is not None:
            return _write_nbgrader(args.notebooks, args.nbgrader)
        by_notebook = build_classroom(args.notebooks, args.out)
    except (ValueError, FileNotFoundError) as error:  # OutputFolderError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    count = sum(map(len, by_notebook.values()))
    print(f"{len(by_notebook)} notebooks, {count} exercises")
    for edition in EDITIONS:
        print(f"  {edition:9s} {Path(args.out) / edition}/")
    print(f"  exercises {Path(args.out) / 'exercises.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
