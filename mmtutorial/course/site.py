"""The executed course as a static web site, rendered by nbconvert's HTML exporter.

``python -m mmtutorial.course.site`` (``make site``) writes ``build/site/``:

* ``index.html``: the learning path (from :data:`mmtutorial.course.COURSE`), itself
  rendered from a small generated notebook so every page looks the same;
* ``NN_name.html``: one page per committed notebook with its outputs and figures, a
  navigation bar (index, previous, next) and links to its source: the notebook, its
  student edition (:mod:`mmtutorial.course.classroom`) and, with ``--source-url``, the file
  in the repository;
* ``notebooks/``: those downloadable ``.ipynb`` files, both editions and the exercise
  lists, as :func:`mmtutorial.course.classroom.build_classroom` writes them;
* ``mathjax/``: MathJax from the ``jupyter-server-mathjax`` package, so the site needs
  no network at all.

Open ``build/site/index.html`` in a browser, or serve the folder with
``python -m http.server -d build/site``.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mmtutorial.cli import ArgumentParser
from mmtutorial.course import COURSE, Lesson
from mmtutorial.course.classroom import build_classroom, read_notebook
from mmtutorial.outputs import atomic_write_text, prepare_output_folder

__all__ = ["SitePage", "build_site", "main"]

TEMPLATE_DIR = Path(__file__).parent / "templates"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
SITE_TITLE = "mmtutorial: attention for multimodal fusion"


@dataclass(frozen=True)
class SitePage:
    """A page written by :func:`build_site`."""

    filename: str
    title: str
    lesson: Lesson | None  # None for the index


def _exporter():
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        extra_template_paths=[str(TEMPLATE_DIR)],
        template_file="site_page.html.j2",
        mathjax_url=MATHJAX_URL,
    )


def _page_title(lesson: Lesson) -> str:
    return f"{lesson.number:02d} · {lesson.title} | mmtutorial"


def _html_name(lesson: Lesson) -> str:
    return lesson.filename.replace(".ipynb", ".html")


def _copy_mathjax(out: Path) -> None:
    try:
        import jupyter_server_mathjax
    except ImportError as error:  # pragma: no cover - a dependency of the `site` extra
        raise RuntimeError("the site needs jupyter-server-mathjax: pip install -e '.[site]'") from error
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", out / "mathjax")


def _index_notebook(lessons: list[Lesson], exercises: dict[str, int]) -> nbformat.NotebookNode:
    parts: dict[str, list[Lesson]] = {}
    for lesson in lessons:
        parts.setdefault(lesson.part, []).append(lesson)
    text = [
        f"# {SITE_TITLE}",
        "",
        "A sequenced course of executed Jupyter notebooks: from the softmax-weighted average "
        "through additive, dot-product, self-, sparse and cross-modal attention, fusion "
        "strategies and missing modalities, to a visual-question-answering fusion model. "
        "Every page below is a notebook exactly as committed, with the outputs of its last "
        "run; read them here, then run them yourself in JupyterLab (`make lab`).",
        "",
        "Each page links to its notebook and to its *student edition*, in which the "
        "exercise solutions are replaced by stubs to fill in (each exercise has a self-check).",
        "",
        "## Learning path",
    ]
    for part, members in parts.items():
        text += ["", f"### {part}", "", "| # | Notebook | What you learn | Exercises |", "| --- | --- | --- | --- |"]
        for lesson in members:
            link = f"[{lesson.title}]({_html_name(lesson)})"
            text.append(f"| {lesson.number:02d} | {link} | {lesson.learn} | {exercises[lesson.filename]} |")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("\n".join(text))])
    notebook.metadata["title"] = SITE_TITLE
    return notebook


def build_site(
    notebooks: str | Path = "notebooks", out: str | Path = "build/site", source_url: str | None = None
) -> list[SitePage]:
    """Render the committed notebooks in ``notebooks`` to a static site in ``out``.

    Args:
        source_url: base URL of the repository's files (for example
            ``https://github.com/<owner>/<repo>/blob/main``); each page then also links
            to ``<source_url>/notebooks/<file>``.

    Returns the pages written, index first. Raises ``FileNotFoundError`` when no
    course notebook is found, and :class:`~mmtutorial.outputs.OutputFolderError` when
    ``out`` is a non-empty folder the site did not make (nothing is deleted then).
    """
    notebooks, out = Path(notebooks), Path(out)
    lessons = [lesson for lesson in COURSE if (notebooks / lesson.filename).exists()]
    if not lessons:
        raise FileNotFoundError(f"no course notebooks (such as {COURSE[0].filename}) in {notebooks}")
    pages_read = {lesson.filename: read_notebook(notebooks / lesson.filename) for lesson in lessons}  # all valid
    prepare_output_folder(out, "site", clean=True)  # refuses a folder the site did not make
    # the downloadable notebooks: both editions, as `make classroom` writes them
    exercises = build_classroom([notebooks / lesson.filename for lesson in lessons], out / "notebooks")
    _copy_mathjax(out)
    exporter = _exporter()
    pages = []
    for position, lesson in enumerate(lessons):
        notebook = pages_read[lesson.filename]
        sources = [
            {"href": f"notebooks/solutions/{lesson.filename}", "label": "Notebook (.ipynb)"},
            {"href": f"notebooks/student/{lesson.filename}", "label": "Student edition"},
        ]
        if source_url:
            sources.append({"href": f"{source_url.rstrip('/')}/notebooks/{lesson.filename}", "label": "Source"})
        neighbours = {
            "previous": lessons[position - 1] if position > 0 else None,
            "next": lessons[position + 1] if position + 1 < len(lessons) else None,
        }
        page = {
            key: {"href": _html_name(n), "label": f"{n.number:02d} {n.title}"} if n else None
            for key, n in neighbours.items()
        }
        page["sources"] = sources
        notebook.metadata["title"] = _page_title(lesson)
        html, _ = exporter.from_notebook_node(notebook, resources={"mmtutorial_page": page})
        atomic_write_text(out / _html_name(lesson), html)
        pages.append(SitePage(_html_name(lesson), _page_title(lesson), lesson))
    html, _ = exporter.from_notebook_node(_index_notebook(lessons, {k: len(v) for k, v in exercises.items()}))
    atomic_write_text(out / "index.html", html)
    return [SitePage("index.html", SITE_TITLE, None), *pages]


def main(argv: Sequence[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m mmtutorial.course.site", description=__doc__.split("\n\n")[0])
    parser.add_argument("--notebooks", default="notebooks", help="folder of executed notebooks (default: notebooks)")
    parser.add_argument("--out", default="build/site", help="output folder (default: build/site)")
    parser.add_argument("--source-url", default=None, help="repository file URL base for 'Source' links")
    args = parser.parse_args(argv)
    try:
        pages = build_site(args.notebooks, args.out, args.source_url)
    except (ValueError, FileNotFoundError) as error:  # OutputFolderError is a ValueError
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{len(pages)} pages in {args.out}/; open {Path(args.out) / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
