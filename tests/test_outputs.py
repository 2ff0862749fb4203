"""Output folders: no command deletes or overwrites a folder it did not create, and files
that later runs read are written atomically (mmtutorial.outputs)."""

import json
import os
import shutil
from pathlib import Path

import pytest

from mmtutorial.outputs import (
    MARKER,
    OutputFolderError,
    atomic_write_json,
    atomic_write_text,
    prepare_output_folder,
)

ROOT = Path(__file__).resolve().parents[1]


def test_a_new_or_empty_folder_is_taken_and_marked(tmp_path):
    new = prepare_output_folder(tmp_path / "a" / "b", "site")
    assert new.is_dir() and json.loads((new / MARKER).read_text())["tool"] == "site"
    (tmp_path / "empty").mkdir()
    assert (prepare_output_folder(tmp_path / "empty", "site") / MARKER).exists()


def test_a_folder_whose_marker_another_run_is_writing_is_taken(tmp_path):
    """Two runs started at once into one new folder: the second may see only the first's
    marker half-written (its temporary file); that folder is empty, not someone else's.
    Any other file still makes it foreign."""
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / f".{MARKER}.abc123.tmp").write_text("")
    assert json.loads((prepare_output_folder(tmp_path / "out", "benchmarks") / MARKER).read_text())["tool"] == (
        "benchmarks"
    )
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / ".notes.abc123.tmp").write_text("")
    with pytest.raises(OutputFolderError, match="refusing to write into a non-empty folder"):
        prepare_output_folder(tmp_path / "other", "benchmarks")


def test_a_marked_folder_is_reused_and_emptied_only_when_asked(tmp_path):
    out = prepare_output_folder(tmp_path / "out", "classroom")
    (out / "old.txt").write_text("old")
    (out / "sub").mkdir()
    prepare_output_folder(out, "classroom")
    assert (out / "old.txt").exists(), "clean=False keeps the files"
    prepare_output_folder(out, "classroom", clean=True)
    assert sorted(p.name for p in out.iterdir()) == [MARKER]


@pytest.mark.parametrize("tool_made_it", [None, "sweep"])
def test_a_non_empty_folder_without_this_tools_marker_is_refused_and_untouched(tmp_path, tool_made_it):
    out = tmp_path / "precious"
    out.mkdir()
    (out / "work.ipynb").write_text("{}")
    if tool_made_it:
        (out / MARKER).write_text(json.dumps({"tool": tool_made_it}))
    expected = f"made by '{tool_made_it}'" if tool_made_it else f"no {MARKER} file"
    with pytest.raises(OutputFolderError, match=f"refusing to write into a non-empty folder .*{expected}"):
        prepare_output_folder(out, "site", clean=True)
    assert (out / "work.ipynb").read_text() == "{}"
    assert (out / MARKER).exists() == bool(tool_made_it)


def test_a_file_is_not_a_folder(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputFolderError, match="is a file, expected a folder"):
        prepare_output_folder(tmp_path / "file", "run")


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path, monkeypatch):
    path = atomic_write_json(tmp_path / "result.json", {"status": "ok"})
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert oct(path.stat().st_mode & 0o777) == "0o644"

    def crash(*args):
        raise KeyboardInterrupt  # Ctrl-C in the middle of a write

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, '{"status": "fa')
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"status": "ok"}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"], "no temporary file is left"


# ---------------------------------------------------------------------------------
# Every command that writes a folder, pointed at a repository: `--out .`
# ---------------------------------------------------------------------------------


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A stand-in for a checkout with uncommitted work: `.git`, notebooks, a README."""
    repo = tmp_path / "repo"
    (repo / ".git").mkdir(parents=True)
    (repo / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    shutil.copytree(ROOT / "notebooks", repo / "notebooks", ignore=shutil.ignore_patterns("0[1-9]_*", "10_*"))
    (repo / "README.md").write_text("uncommitted notes\n")
    monkeypatch.chdir(repo)
    return repo


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _commands():
    from mmtutorial import experiments
    from mmtutorial.course import classroom, site

    notebook = "notebooks/00_welcome.ipynb"
    return {
        "site": lambda out: site.main(["--notebooks", "notebooks", "--out", out]),
        "classroom": lambda out: classroom.main(["notebooks", "--out", out]),
        "run": lambda out: experiments.main(["run", notebook, "--out", out, "-p", "smoke", "True"]),
        "sweep": lambda out: experiments.main(["sweep", notebook, "--grid", "grid.yaml", "--out", out]),
    }


@pytest.mark.parametrize("command", ["site", "classroom", "run", "sweep"])
@pytest.mark.parametrize("out", [".", "notebooks"])
def test_no_command_deletes_or_overwrites_a_folder_it_did_not_create(repository, capsys, command, out):
    (repository / "grid.yaml").write_text("fixed:\n  smoke: true\n")
    before = _snapshot(repository)
    assert _commands()[command](out) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "refusing to write into a non-empty folder" in error, error
    assert _snapshot(repository) == before, "nothing was deleted, changed or added"


def test_benchmarks_refuse_a_foreign_folder_before_measuring(repository, capsys):
    import runpy

    for script in ("attention_scaling.py", "vqa_sort_of_clevr.py"):
        module = runpy.run_path(str(ROOT / "benchmarks" / script))
        before = _snapshot(repository)
        assert module["main"](["--out", "."]) == 2
        assert "refusing to write into a non-empty folder" in capsys.readouterr().err
        assert _snapshot(repository) == before


def test_the_committed_benchmark_results_folder_is_the_benchmarks_own():
    assert json.loads((ROOT / "benchmarks" / "results" / MARKER).read_text())["tool"] == "benchmarks"
