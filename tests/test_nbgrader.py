"""The nbgrader edition (``python -m mmtutorial.course.classroom --nbgrader OUT``), checked
with nbgrader itself: its metadata validator and solution stripper on every notebook, and
a whole round trip offline: ``nbgrader generate_assignment``, then ``nbgrader autograde`` of a
student who answered everything (full marks) and of one who answered nothing (zero, with
the hint in the feedback)."""

import html
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

from mmtutorial.course import classroom
from mmtutorial.course.classroom import Exercise, find_exercises, read_notebook
from mmtutorial.course.nbgrader_edition import (
    BEGIN_SOLUTION,
    END_SOLUTION,
    NBGRADER_CONFIG,
    POINTS_PER_EXERCISE,
    nbgrader_source,
    solution_regions,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BIN = Path(sys.executable).parent


def exercise(hint: str = "use broadcasting") -> Exercise:
    return Exercise("nb.ipynb", 2, "top-k attention", ("f",), ("check_f",), hint, 0, (1,))


def clear_solutions(source: str) -> str:
    """What ``nbgrader generate_assignment`` makes of a solution cell (its own preprocessor)."""
    from nbgrader.preprocessors import ClearSolutions

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python"}
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"solution": True, "grade": False, "locked": False, "grade_id": "x"}
    notebook.cells = [cell]
    cleared, _ = ClearSolutions().preprocess(notebook, {})
    return cleared.cells[0].source


def run_cell(source: str) -> dict:
    namespace: dict = {}
    exec(compile(source, "<cell>", "exec"), namespace)
    return namespace


# ---------------------------------------------------------------------------------
# Solution regions
# ---------------------------------------------------------------------------------

SOLUTIONS = {
    "plain": """
        import math


        def f(x):
            # the scale matters
            y = x * 2
            return y + math.floor(0.5)
        """,
    "docstring": '''
        def f(x):
            """Twice x."""
            return 2 * x
        ''',
    "one line": "def f(x): return 2 * x",
    "decorated, long signature": """
        import functools


        @functools.lru_cache
        def f(
            x,
            scale=2,
        ):
            return scale * x
        """,
    "no function": """
        y = 3
        z = y * 2
        """,
}


@pytest.mark.parametrize("kind", list(SOLUTIONS))
def test_solution_regions_keep_the_answer_runnable_and_nbgrader_strips_exactly_it(kind):
    solution = textwrap.dedent(SOLUTIONS[kind]).strip()
    marked = solution_regions(solution, exercise())
    assert marked.count(BEGIN_SOLUTION) == marked.count(END_SOLUTION) == 1
    assert "# Exercise 2 (top-k attention). Hint: use broadcasting" in marked
    solved, original = run_cell(marked), run_cell(solution)
    if "f" in original:
        assert solved["f"](3) == original["f"](3) == 6
    else:
        assert solved["z"] == original["z"] == 6
    stub = clear_solutions(marked)
    assert "raise NotImplementedError()" in stub and "Hint: use broadcasting" in stub
    assert "2 * x" not in stub and "x * 2" not in stub and "y * 2" not in stub
    student = run_cell(stub) if "f" in original else None
    if student is not None:
        with pytest.raises(NotImplementedError):
            student["f"](3)
    else:
        with pytest.raises(NotImplementedError):
            run_cell(stub)
    if '"""Twice x."""' in solution:
        assert '"""Twice x."""' in stub, "the docstring is part of the question"


def test_comments_outside_the_answer_stay_and_an_exercise_without_hint_names_itself():
    solution = "# helper first\nimport math\n\n\ndef f(x):\n    return math.sqrt(x)\n"
    marked = solution_regions(solution, exercise(hint=""))
    assert marked.startswith("# helper first\nimport math")
    assert "    # Exercise 2 (top-k attention).\n    ### BEGIN SOLUTION" in marked


# ---------------------------------------------------------------------------------
# Every notebook's nbgrader source
# ---------------------------------------------------------------------------------


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_becomes_a_valid_nbgrader_source(path):
    from nbgrader.nbgraderformat import MetadataValidator

    committed = read_notebook(path)
    exercises = find_exercises(committed, path.name)
    source = nbgrader_source(committed, exercises)
    MetadataValidator().validate_nb(source)  # nbgrader's own schema and rules
    meta = [cell.metadata["nbgrader"] for cell in source.cells]
    answers = [c for c, m in zip(source.cells, meta, strict=True) if m["solution"]]
    tests = [(c, m) for c, m in zip(source.cells, meta, strict=True) if m["grade"]]
    assert len(answers) == len(exercises) > 0
    assert [m["grade_id"] for m in meta if m["solution"]] == [f"exercise{e.number}-answer" for e in exercises]
    assert sum(m["points"] for _, m in tests) == POINTS_PER_EXERCISE * len(exercises)
    assert all(m["locked"] and "checks.check_" in c.source for c, m in tests)
    assert all(m["locked"] for m in meta if not m["solution"]), "every lesson cell is read-only"
    assert not any("source_hidden" in c.metadata.get("jupyter", {}) for c in answers), "answers are visible"
    notes = sum("solution" in c.metadata.get("tags", []) and c.cell_type == "markdown" for c in committed.cells)
    assert len(source.cells) == len(committed.cells) - notes, "only the solution notes are left out"
    for exercise_, answer in zip(exercises, answers, strict=True):
        stub = clear_solutions(answer.source)
        for line in committed.cells[exercise_.cell].source.splitlines():
            body = line.strip()
            if body and not body.startswith(("def ", "import ", "from ", '"""', "#", "@")) and len(body) > 12:
                assert body not in stub, f"{path.name}, exercise {exercise_.number}: {body!r} leaks"


# ---------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------


def test_cli_writes_the_course_directory_and_keeps_the_gradebook(tmp_path, capsys):
    out = tmp_path / "course"
    assert classroom.main([str(NOTEBOOKS[0]), str(NOTEBOOKS[1]), "--nbgrader", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 assignments (one per notebook), 4 autograded exercises" in printed
    assert f"nbgrader generate_assignment {NOTEBOOKS[0].stem}" in printed
    for path in NOTEBOOKS[:2]:
        written = nbformat.read(out / "source" / path.stem / path.name, as_version=4)
        assert written.metadata["mmtutorial"]["edition"] == "nbgrader"
    assert (out / "nbgrader_config.py").read_text() == NBGRADER_CONFIG
    assert sorted(p.name for p in tmp_path.iterdir()) == ["course"], "--nbgrader writes the course only"
    # a second run rewrites its assignments' sources and keeps the rest of the course
    (out / "gradebook.db").write_text("grades")
    (out / "nbgrader_config.py").write_text("# the instructor's own\n")
    (out / "source" / NOTEBOOKS[1].stem / "stale.txt").write_text("old")
    assert classroom.main([str(NOTEBOOKS[1]), "--nbgrader", str(out)]) == 0
    assert (out / "gradebook.db").read_text() == "grades"
    assert (out / "nbgrader_config.py").read_text() == "# the instructor's own\n"
    assert not (out / "source" / NOTEBOOKS[1].stem / "stale.txt").exists()
    assert (out / "source" / NOTEBOOKS[0].stem / NOTEBOOKS[0].name).exists(), "other assignments are kept"


def test_cli_copies_the_folders_a_notebook_uses(tmp_path):
    sweeps = ROOT / "notebooks" / "10_experiments_with_papermill.ipynb"
    assert classroom.main([str(sweeps), "--nbgrader", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "source" / sweeps.stem / "experiments" / "fusion_experiment.ipynb").exists()


def test_cli_refuses_a_folder_it_did_not_make(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert classroom.main([str(NOTEBOOKS[0]), "--nbgrader", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --nbgrader {tmp_path}: refusing to write") and len(error.splitlines()) == 1
    assert (tmp_path / "mine.txt").read_text() == "keep me" and not (tmp_path / "source").exists()


# ---------------------------------------------------------------------------------
# The round trip, with nbgrader itself
# ---------------------------------------------------------------------------------


def nbgrader(course: Path, *arguments: str) -> str:
    """Run the nbgrader command line in ``course``; its output, or a failure showing it."""
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # nbgrader runs `alembic` from PATH
        "MMTUTORIAL_SMOKE": "1",
        "OMP_NUM_THREADS": "1",
    }
    done = subprocess.run(
        [str(BIN / "nbgrader"), *arguments], cwd=course, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"nbgrader {' '.join(arguments)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.notebook
def test_nbgrader_generates_and_autogrades_an_assignment_offline(tmp_path):
    from nbgrader.api import Gradebook

    course = tmp_path / "course"
    # notebook 01: quick in smoke mode, with exercises that have hints (one assignment is
    # the whole nbgrader flow; every notebook's regions are checked by the tests above)
    chosen = [NOTEBOOKS[1]]
    assert classroom.main([*map(str, chosen), "--nbgrader", str(course)]) == 0
    for student in ("full", "empty"):
        nbgrader(course, "db", "student", "add", student)
    for path in chosen:
        assignment = path.stem
        nbgrader(course, "generate_assignment", assignment)
        released = nbformat.read(course / "release" / assignment / path.name, as_version=4)
        answers = {
            c.metadata["nbgrader"]["grade_id"]: c.source
            for c in nbformat.read(course / "source" / assignment / path.name, as_version=4).cells
            if c.metadata["nbgrader"]["solution"]
        }
        stubs = [c for c in released.cells if c.metadata["nbgrader"]["solution"]]
        assert stubs and all("raise NotImplementedError()" in c.source for c in stubs)
        # "full" writes every answer into the released notebook; "empty" hands it in as released
        for student in ("full", "empty"):
            folder = course / "submitted" / student / assignment
            folder.mkdir(parents=True)
            handed_in = nbformat.from_dict(released)
            if student == "full":
                for cell in handed_in.cells:
                    if cell.metadata["nbgrader"]["solution"]:
                        cell.source = answers[cell.metadata["nbgrader"]["grade_id"]]
            nbformat.write(handed_in, folder / path.name)
        nbgrader(course, "autograde", assignment)
        nbgrader(course, "generate_feedback", assignment)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for path in chosen:
            exercises = find_exercises(read_notebook(path), path.name)
            full = gradebook.find_submission(path.stem, "full")
            empty = gradebook.find_submission(path.stem, "empty")
            assert full.max_score == POINTS_PER_EXERCISE * len(exercises)
            assert full.score == full.max_score, f"{path.stem}: the answered notebook gets full marks"
            assert empty.score == 0, f"{path.stem}: unanswered exercises get no points"
    # the feedback of an unanswered exercise says it is not implemented and gives the hint
    feedback = (course / "feedback" / "empty" / chosen[0].stem / f"{chosen[0].stem}.html").read_text()
    hinted = next(e for e in find_exercises(read_notebook(chosen[0]), chosen[0].name) if e.hint)
    shown = " ".join(html.unescape(re.sub(r"<[^>]+>", "", feedback)).replace("#", " ").split())
    assert "NotImplementedError" in shown and "not implemented yet" in shown
    assert f"Hint: {' '.join(hinted.hint.split())}" in shown
    graded = nbformat.read(course / "autograded" / "full" / chosen[0].stem / chosen[0].name, as_version=4)
    ticks = "".join(o.get("text", "") for c in graded.cells for o in c.get("outputs", []))
    assert ticks.count("✓ ") >= len(find_exercises(graded, chosen[0].name))
    shutil.rmtree(course)  # the kernels are gone; leave nothing large behind
