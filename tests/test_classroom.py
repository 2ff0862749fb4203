"""The classroom kit: exercises found in the notebooks, student stubs, both editions,
the README's coverage table and the self-test edition (test_notebooks.py executes it)."""

import json
from pathlib import Path

import nbformat
import pytest

from mmtutorial.course import checks
from mmtutorial.course.classroom import (
    SELF_TEST_TAG,
    build_classroom,
    coverage_table,
    find_exercises,
    main,
    self_test_edition,
    stub_source,
    student_edition,
)

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code(source, tags=(), outputs=(), hidden=False):
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags)})
    if hidden:
        cell.metadata["jupyter"] = {"source_hidden": True}
    cell.outputs = [nbformat.v4.new_output("stream", text=text) for text in outputs]
    cell.execution_count = 1 if outputs else None
    return cell


def _toy_notebook():
    md = nbformat.v4.new_markdown_cell
    return nbformat.v4.new_notebook(
        cells=[
            md("# Toy lesson"),
            _code("x = 1\nprint(x)", outputs=["1\n"]),
            md("## Exercises\n\n### Exercise 1: double it\n\nWrite `double(x)`.\n\n*Hint:* multiply\nby two.\n"),
            _code(
                'import math\n\n\ndef double(x: float,\n           y: float = 0.0) -> float:\n    """Twice x."""\n'
                "    return 2 * x\n\n\nSECRET = 42\n",
                tags=["solution"],
                hidden=True,
            ),
            _code("checks.check_double(double)", outputs=["✓ double: all 2 cases passed\n"]),
            md("Why: the answer is `2 * x`."),
            md("### Exercise 2: a constant\n\nSet `answer`."),
            _code("answer = 41 + 1", tags=["solution"]),
            _code("checks.check_answer(answer)\nchecks.check_answer_type(answer)", outputs=["✓\n"]),
            _code("print('after the exercises')", outputs=["after the exercises\n"]),
        ]
    )


def test_find_exercises_reads_titles_hints_functions_and_checks():
    notebook = _toy_notebook()
    first, second = find_exercises(notebook, "toy.ipynb")
    assert (first.number, first.title, first.functions, first.checks) == (
        1,
        "double it",
        ("double",),
        ("check_double",),
    )
    assert first.hint == "multiply by two." and first.cell == 3 and first.check_cells == (4,) and first.self_checked
    assert (second.number, second.title, second.functions) == (2, "a constant", ())
    assert second.checks == ("check_answer", "check_answer_type") and second.hint == ""
    assert second.check_cells == (8,)


def test_find_exercises_names_a_broken_solution_cell():
    notebook = nbformat.v4.new_notebook(cells=[_code("def f(:\n    pass", tags=["solution"])])
    with pytest.raises(ValueError, match=r"bad.ipynb, cell 0: the solution is not valid Python"):
        find_exercises(notebook, "bad.ipynb")


def test_stub_keeps_signature_docstring_and_imports_and_raises_with_the_hint():
    notebook = _toy_notebook()
    exercise = find_exercises(notebook)[0]
    stub = stub_source(notebook.cells[3].source, exercise)
    assert 'def double(x: float,\n           y: float = 0.0) -> float:\n    """Twice x."""' in stub
    assert "import math" in stub
    assert "return 2 * x" not in stub and "SECRET" not in stub, "the answer must not leak into the stub"
    namespace = {}
    exec(compile(stub, "stub", "exec"), namespace)
    with pytest.raises(NotImplementedError) as raised:
        namespace["double"](1.0)
    message = str(raised.value)
    assert "Exercise 1 (double it): write double() here. Hint: Multiply by two." in message
    assert "checks.check_double" in message


def test_stub_of_one_line_and_decorated_functions_and_of_a_cell_without_functions():
    exercise = find_exercises(_toy_notebook())[1]
    one_line = stub_source("def f(x): return x + 1\n", exercise)
    assert one_line.startswith("def f(x):\n    #") and "return x + 1" not in one_line
    decorated = stub_source("@staticmethod\ndef g():\n    return 3\n", exercise)
    assert decorated.startswith("@staticmethod\ndef g():")
    bare = stub_source("answer = 41 + 1", exercise)
    assert bare.startswith("raise NotImplementedError(") and "41" not in bare
    for source in (one_line, decorated):
        compile(source, "stub", "exec")
    with pytest.raises(NotImplementedError, match="Exercise 2 \\(a constant\\): your code here"):
        exec(bare, {})


def test_student_edition_stubs_solutions_drops_solution_prose_and_clears_exercise_outputs():
    notebook = _toy_notebook()
    notebook.cells[5].metadata["tags"] = ["solution"]  # the "Why: ..." prose
    student = student_edition(notebook, "toy.ipynb")
    sources = [c.source for c in student.cells]
    assert not any("Why: the answer" in s for s in sources), "solution prose is removed"
    assert len(student.cells) == len(notebook.cells) - 1
    stub = student.cells[3]
    assert "raise NotImplementedError" in stub.source and stub.metadata["tags"] == ["exercise"]
    assert "jupyter" not in stub.metadata, "the stub must not be hidden"
    assert student.cells[4].outputs == [] and student.cells[4].execution_count is None, "the check's tick is cleared"
    assert student.cells[1].outputs and student.cells[-1].outputs, "the lesson keeps its outputs"
    assert student.metadata["mmtutorial"]["edition"] == "student"
    assert notebook.cells[3].source.count("return 2 * x") == 1, "the source notebook is untouched"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    out = tmp_path_factory.mktemp("classroom")
    return out, build_classroom([ROOT / "notebooks"], out)


def test_every_notebook_has_self_checked_exercises_with_solutions(classroom):
    _, by_notebook = classroom
    assert sorted(by_notebook) == [p.name for p in NOTEBOOKS]
    for name, exercises in by_notebook.items():
        assert exercises, f"{name} has no exercises"
        for e in exercises:
            assert e.functions and e.self_checked, f"{name}, exercise {e.number}"
            assert all(callable(getattr(checks, c, None)) for c in e.checks), e.checks
        assert [e.number for e in exercises] == list(range(1, len(exercises) + 1)), name


def test_classroom_writes_both_editions_and_the_exercise_lists(classroom):
    out, by_notebook = classroom
    for path in NOTEBOOKS:
        assert (out / "solutions" / path.name).read_bytes() == path.read_bytes()
        student = nbformat.read(out / "student" / path.name, as_version=4)
        nbformat.validate(student)
        solutions = [
            c
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])
        ]
        stubs = [c for c in student.cells if "exercise" in c.metadata.get("tags", [])]
        assert len(stubs) == len(solutions) == len(by_notebook[path.name])
        for solution, stub in zip(solutions, stubs, strict=True):
            body = [ln.strip() for ln in solution.source.splitlines() if ln.startswith("    ") and ln.strip()]
            leaked = [ln for ln in body if ln in stub.source]
            assert not leaked, f"{path.name}: solution lines in the student's stub: {leaked}"
        assert not any("solution" in c.metadata.get("tags", []) for c in student.cells)
        prose = [
            c.source
            for c in nbformat.read(path, as_version=4).cells
            if c.cell_type == "markdown" and "solution" in c.metadata.get("tags", [])
        ]
        assert prose, f"{path.name}: no solution notes (markdown cells tagged 'solution')"
        assert not any(text in c.source for text in prose for c in student.cells), "solution prose is removed"
        # nothing else differs: the same cells in the same order, stubs in place of solutions
        source = nbformat.read(path, as_version=4)
        kept = [(c.cell_type, c.source) for c in source.cells if "solution" not in c.metadata.get("tags", [])]
        assert [(c.cell_type, c.source) for c in student.cells if c not in stubs] == kept
    for edition in ("student", "solutions"):
        assert (out / edition / "experiments" / "fusion_experiment.ipynb").exists(), "notebook 10 sweeps it"
    listed = json.loads((out / "exercises.json").read_text())
    assert {k: len(v) for k, v in listed.items()} == {k: len(v) for k, v in by_notebook.items()}
    text = (out / "exercises.md").read_text()
    assert all(f"`checks.{c}`" in text for es in by_notebook.values() for e in es for c in e.checks)


def test_readme_coverage_table_is_current(classroom):
    _, by_notebook = classroom
    assert coverage_table(by_notebook) in (ROOT / "README.md").read_text(), (
        "update the README's table: python -m mmtutorial.course.classroom --table"
    )


def test_cli_builds_and_rejects_a_missing_path(tmp_path, capsys):
    assert main([str(NOTEBOOKS[0]), "--out", str(tmp_path)]) == 0
    assert "1 notebooks" in capsys.readouterr().out and (tmp_path / "student" / NOTEBOOKS[0].name).exists()
    assert main(["nowhere", "--out", str(tmp_path)]) == 2  # a one-line error, no traceback
    assert capsys.readouterr().err.strip() == "error: not a notebook or a folder of notebooks: nowhere"


def test_self_test_edition_tries_each_stub_before_its_solution():
    notebook = _toy_notebook()
    tested = self_test_edition(notebook, "toy.ipynb")
    tags = [c.metadata.get("tags", []) for c in tested.cells]
    added = [i for i, t in enumerate(tags) if SELF_TEST_TAG in t]
    assert len(tested.cells) == len(notebook.cells) + 2
    assert [tags[i + 1] for i in added] == [["solution"], ["solution"]], "each added cell sits before its solution"
    first = tested.cells[added[0]].source
    compile(first, "self-test", "exec")  # valid Python
    assert "raise NotImplementedError(" in first and "checks.check_double(double)" in first
    assert "return 2 * x" not in first and "SECRET" not in first, "it tries the stub, not the solution"

    class FakeChecks:  # a self-check calls the function under test
        @staticmethod
        def check_double(function):
            function(1.0)

    namespace = {"checks": FakeChecks}
    exec(first, namespace, namespace)  # the stub stops the check: the cell passes
    assert "double" in namespace
    with pytest.raises(AssertionError, match="Exercise 1: the stub did not stop"):
        exec(first.replace("raise NotImplementedError(", "return (", 1), namespace, namespace)
    assert [c for c in tested.cells if SELF_TEST_TAG not in c.metadata.get("tags", [])] == notebook.cells
