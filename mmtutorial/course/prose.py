"""Prose that cannot drift from its outputs: every measured number in a notebook's markdown
must be printed by a cell above it, or be a cited external figure.

    python -m mmtutorial.course.prose notebooks/*.ipynb     # one line per problem

**Which numbers are checked.** Numbers that report a measurement: any number with a decimal
point (``0.78``, ``1.34``), and any number with a unit or a ratio mark after it (``95%``,
``6.8x``, ``10 s``, ``7 min``, ``9 epochs``, ``37.9k``, ``12 MiB``). Plain counts and
names (``6 objects``, ``notebook 09``, ``Exercise 2``, ``75x75``) are not measurements and
are left alone.

**What is not prose.** Inline code (`` `lr=0.001` ``: a parameter, shown as code), LaTeX math
(``$\\sqrt{d}$``), link targets and HTML comments are skipped, and so are the notebook's
first cell (title, goals and the timing line, which tests/test_notebooks.py checks against
the README) and its References section.

**Where a number may come from.** From the text outputs (printed streams and ``text/plain``
results) of the code cells above the markdown cell. A number matches a printed one
within its own rounding: ``0.78`` matches a printed ``0.7812``, ``78%`` matches ``0.7812``
(or ``78.1``), ``6.8x`` matches ``6.79``. A figure quoted from a paper is *cited*: the same
sentence names its source by author and year (``Santoro et al. 2017``, ``Perez et al.,
2018``), and that author and year appear in the notebook's References section.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProseProblem", "prose_numbers", "printed_numbers", "check_notebook_prose", "main"]

_UNITS = (
    r"%|x(?![\w\d])|×|s(?![\w])|sec(?:onds?)?\b|seconds?\b|ms\b|min(?:utes?)?\b|h(?:ours?)?\b|"
    r"epochs?\b|steps?\b|updates?\b|MiB\b|MB\b|GiB\b|GB\b|KiB\b|kB\b|k\b|questions/s\b|q/s\b|"
    r"pp\b|percentage points\b|times\b|tokens/s\b|samples/s\b|TFLOP/s\b|dB\b"
)
_NUMBER = re.compile(
    r"(?<![\w.\-/])(?P<sign>[-+−])?(?P<number>\d{1,3}(?:,\d{3})+|\d+)(?P<fraction>\.\d+)?"
    r"(?:\s?(?P<unit>" + _UNITS + r"))?"
)
_PRINTED = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_SKIP = [
    re.compile(r"```.*?```", re.S),  # code blocks
    re.compile(r"`[^`]*`"),  # inline code
    re.compile(r"\$\$.*?\$\$", re.S),  # display math
    re.compile(r"\$[^$]*\$"),  # inline math
    re.compile(r"<!--.*?-->", re.S),  # comments
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
]
_CITATION = re.compile(r"([A-Z][A-Za-zÀ-ÿ'\-]+)(?: et al\.| and [A-Z][A-Za-zÀ-ÿ'\-]+)?,? \(?(\d{4})[a-z]?\)?")
_REFERENCES = re.compile(r"^#+\s*(References|Further reading|Sources)\b", re.M | re.I)


@dataclass(frozen=True)
class ProseProblem:
    """A number in prose that no output above prints and no citation backs."""

    notebook: str
    cell: int
    number: str
    sentence: str

    def __str__(self) -> str:
        return f"{self.notebook}, cell {self.cell}: {self.number!r} is printed by no cell above ({self.sentence!r})"


@dataclass(frozen=True)
class _Number:
    text: str
    value: float
    decimals: int
    percent: bool
    sentence: str


def _strip(text: str) -> str:
    for pattern in _SKIP:
        text = pattern.sub(" ", text)
    return text


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+(?=[A-Z(*_])|\n\s*\n|\n[-*] ", text) if s.strip()]


def prose_numbers(markdown: str) -> list[_Number]:
    """The measured numbers of a markdown text (module docstring), with their sentences."""
    found = []
    for sentence in _sentences(_strip(markdown)):
        if sentence.lstrip().startswith("#"):
            continue  # headings name things; they do not report measurements
        for match in _NUMBER.finditer(sentence):
            fraction, unit = match.group("fraction"), match.group("unit")
            if not fraction and not unit:
                continue
            if unit == "x" and re.match(r"x\d", sentence[match.end("number") :].lstrip()):
                continue  # 75x75, 5x5: a size
            digits = match.group("number").replace(",", "") + (fraction or "")
            value = float(digits) * (-1 if match.group("sign") in ("-", "−") else 1)
            if unit == "k":
                value *= 1000
            found.append(
                _Number(match.group(0).strip(), value, len(fraction) - 1 if fraction else 0, unit == "%", sentence)
            )
    return found


def printed_numbers(outputs: Iterable[dict]) -> list[float]:
    """Every number in the text outputs of code cells (streams and ``text/plain``)."""
    numbers = []
    for output in outputs:
        texts = []
        if output.get("output_type") == "stream":
            texts.append(output.get("text", ""))
        elif output.get("output_type") in ("execute_result", "display_data"):
            texts.append(output.get("data", {}).get("text/plain", ""))
        for text in texts:
            text = "".join(text) if isinstance(text, list) else text
            for match in _PRINTED.finditer(text.replace(",", "")):
                try:
                    numbers.append(float(match.group(0)))
                except ValueError:
                    continue
    return numbers


def _matches(number: _Number, printed: Sequence[float]) -> bool:
    tolerance = 0.5 * 10 ** (-number.decimals) + 1e-9
    candidates = [number.value]
    if number.text.endswith(("k", "k ")):  # 37.9k: its rounding is in thousands
        tolerance *= 1000
    for value in printed:
        scaled = (value, value * 100) if number.percent else (value,)
        if any(abs(v - c) <= tolerance for v in scaled for c in candidates):
            return True
        if math.isclose(value, number.value, rel_tol=1e-6):
            return True
    return False


def _references(cells: Sequence[dict]) -> str:
    for cell in cells:
        source = "".join(cell.get("source", []))
        if cell.get("cell_type") == "markdown" and _REFERENCES.search(source):
            return source
    return ""


def _cited(sentence: str, references: str) -> bool:
    """True when the sentence names an author and year that the References section lists."""
    for author, year in _CITATION.findall(sentence):
        if author in references and year in references:
            return True
    return False


def check_notebook_prose(path: str | os.PathLike) -> list[ProseProblem]:
    """Every measured number in ``path``'s markdown that no output above prints and no
    citation backs (see the module docstring)."""
    path = Path(path)
    cells = json.loads(path.read_text()).get("cells", [])
    references = _references(cells)
    problems, printed = [], []
    for index, cell in enumerate(cells):
        if cell.get("cell_type") == "code":
            printed.extend(printed_numbers(cell.get("outputs", [])))
            continue
        source = "".join(cell.get("source", []))
        if index == 0 or cell.get("cell_type") != "markdown" or _REFERENCES.search(source):
            continue
        if "solution" in cell.get("metadata", {}).get("tags", []) and not printed:
            continue
        for number in prose_numbers(source):
            if not _matches(number, printed) and not _cited(number.sentence, references):
                problems.append(ProseProblem(path.name, index, number.text, " ".join(number.sentence.split())[:120]))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:])
    if not paths:
        print("usage: python -m mmtutorial.course.prose NOTEBOOK...", file=sys.stderr)
        return 2
    problems = [p for path in paths for p in check_notebook_prose(path)]
    for problem in problems:
        print(problem)
    print(f"{len(paths)} notebooks checked, {len(problems)} numbers not printed above")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
