"""Prose that cannot drift from its outputs, and exercises whose answers are not on screen:
the checkers themselves (planted wrong numbers, planted copied solutions) and the
committed notebooks."""

import copy
import json
from pathlib import Path

import nbformat
import pytest

from mmtutorial.course.classroom import solution_leaks
from mmtutorial.course.prose import check_notebook_prose, printed_numbers, prose_numbers

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _notebook(tmp_path, *cells) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_markdown_cell("# Title\n\nRuns in about 3 min.")]
    for kind, source, printed in cells:
        if kind == "code":
            cell = nbformat.v4.new_code_cell(source)
            cell.outputs = [nbformat.v4.new_output("stream", text=printed)] if printed else []
        else:
            cell = nbformat.v4.new_markdown_cell(source)
        notebook.cells.append(cell)
    path = tmp_path / "nb.ipynb"
    nbformat.write(notebook, path)
    return path


def test_which_numbers_are_measurements():
    found = [
        n.text
        for n in prose_numbers(
            "Accuracy rose to 0.78 (95%) in 12 s, 6.8x faster, over 9 epochs. Notebook 09 has 6 objects on "
            "75x75 images; `lr=0.001` and $\\sqrt{64} = 8$ are not prose."
        )
    ]
    assert found == ["0.78", "95%", "12 s", "6.8x", "9 epochs"]


def test_a_number_matches_a_printed_one_within_its_rounding(tmp_path):
    path = _notebook(
        tmp_path,
        ("code", "print(acc)", "test accuracy 0.7812, ratio 6.79, took 12.3 s\n"),
        ("markdown", "It reaches 0.78, that is 78%, 6.8x faster, in 12 s.", None),
    )
    assert check_notebook_prose(path) == []


def test_a_planted_wrong_number_fails(tmp_path):
    path = _notebook(
        tmp_path,
        ("code", "print(acc)", "test accuracy 0.7812\n"),
        ("markdown", "It reaches 0.81 on the test set.", None),
    )
    (problem,) = check_notebook_prose(path)
    assert problem.number == "0.81" and problem.cell == 2


def test_a_number_printed_only_below_does_not_count(tmp_path):
    path = _notebook(tmp_path, ("markdown", "It will reach 0.78.", None), ("code", "print(acc)", "0.78\n"))
    assert [p.number for p in check_notebook_prose(path)] == ["0.78"]


def test_a_cited_figure_needs_its_source_in_the_references(tmp_path):
    sentence = "The paper reports 94% relational accuracy (Santoro et al. 2017)."
    cited = _notebook(
        tmp_path,
        ("markdown", sentence, None),
        ("markdown", "## References\n\n- Santoro et al. 2017. A simple neural network module.", None),
    )
    assert check_notebook_prose(cited) == []
    uncited = _notebook(tmp_path, ("markdown", sentence, None), ("markdown", "## References\n\n- Nobody 2020.", None))
    assert [p.number for p in check_notebook_prose(uncited)] == ["94%"]


def test_printed_numbers_read_streams_and_results():
    outputs = [
        {"output_type": "stream", "text": ["loss 0.25, 1,234 steps\n"]},
        {"output_type": "execute_result", "data": {"text/plain": "tensor(3.5e-05)"}},
    ]
    assert printed_numbers(outputs) == [0.25, 1234.0, 3.5e-05]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_planted_wrong_number_in_a_committed_notebook_is_caught(path, tmp_path):
    notebook = json.loads(path.read_text())
    # the last markdown cell before the references (replacing those would uncite every citation)
    last = max(
        i
        for i, c in enumerate(notebook["cells"])
        if c["cell_type"] == "markdown" and not "".join(c["source"]).lstrip().startswith("## References")
    )
    planted = copy.deepcopy(notebook)
    planted["cells"][last]["source"] = ["It scores 0.98765 here."]
    (tmp_path / path.name).write_text(json.dumps(planted))
    before = {(p.cell, p.number) for p in check_notebook_prose(path)}
    after = {(p.cell, p.number) for p in check_notebook_prose(tmp_path / path.name)}
    assert after - before == {(last, "0.98765")}


def _toy_exercise(lesson_line: str):
    md = nbformat.v4.new_markdown_cell
    code = nbformat.v4.new_code_cell
    return nbformat.v4.new_notebook(
        cells=[
            md("# Toy"),
            code(lesson_line),
            md("### Exercise 1: temperature\n\nWrite it."),
            code(
                'def softmax_t(scores, temperature):\n    """Doc."""\n'
                "    return torch.softmax(scores / temperature, dim=-1)\n",
                metadata={"tags": ["solution"]},
            ),
            code("checks.check_softmax_with_temperature(softmax_t)"),
        ]
    )


def test_a_planted_copied_solution_is_caught_even_with_other_names():
    leaked = _toy_exercise("weights = torch.softmax(logits / T, dim=-1)")
    (leak,) = solution_leaks(leaked, "toy.ipynb")
    assert "exercise 1" in leak and "cell 1" in leak
    assert solution_leaks(_toy_exercise("weights = torch.softmax(logits, dim=-1)"), "toy.ipynb") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_prose_says_what_its_cells_print(path):
    problems = check_notebook_prose(path)
    assert not problems, "\n".join(str(problem) for problem in problems)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_lesson_cell_shows_an_exercise_solution(path):
    leaks = solution_leaks(nbformat.read(path, as_version=4), path.name)
    assert not leaks, "\n".join(leaks)
