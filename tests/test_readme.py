"""The README's commands work as written: every shell block declares how it is tested, uses
one convention (`make` or `.venv/bin/...`), and the quick ones run, as a new user would run
them, in a fresh copy of the repository."""

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (?P<mode>[^>]*?) -->\n)?```(?P<lang>bash|sh|console)\n(?P<body>.*?)```", re.S)
MODES = ("run", "smoke", "dry-run", "help", "skip")
#: How a command line may start: the course's environment, make, or plain shell utilities.
ALLOWED = re.compile(r"^(make\b|\.venv/bin/|mkdir\b|cp\b|cd\b|source\b|conda\b|git\b)")


def readme_blocks() -> list[tuple[str, str]]:
    """(mode, body) of every shell block of the README, in order."""
    return [(m.group("mode") or "", m.group("body")) for m in BLOCK.finditer(README.read_text())]


def commands(body: str) -> list[str]:
    """The block's command lines: continuations joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    lines = [line.split(" #")[0].strip() for line in joined.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_every_shell_block_declares_how_it_is_tested_and_uses_one_convention():
    blocks = readme_blocks()
    assert len(blocks) >= 8
    for mode, body in blocks:
        kind = mode.split()[0] if mode else ""
        assert kind in MODES, f"a README shell block needs <!-- readme-test: {'|'.join(MODES)} --> above it:\n{body}"
        if kind == "skip":
            assert "(" in mode, f"say why a block is skipped: {mode!r}"
        for command in commands(body):
            assert ALLOWED.match(command), f"run the course's programs as .venv/bin/... or make: {command!r}"


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory):
    """The repository's committed files in a new folder, with the set-up environment linked
    in (what `make setup` leaves after a clone)."""
    copy = tmp_path_factory.mktemp("clone") / "mmtutorial"
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for name in files.splitlines():
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    (copy / ".venv").symlink_to(ROOT / ".venv")
    return copy


def _help_command(command: str) -> str:
    words = shlex.split(command)
    if words[0] == "make":
        return "make -n " + " ".join(words[1:])
    if "-m" in words:
        module = words[words.index("-m") + 1]
        launcher = f"{words[0]} --help > /dev/null && " if words[0].endswith("torchrun") else ""
        return f"{launcher}.venv/bin/python -m {module} --help"
    return f"{words[0]} {words[1]} --help" if words[1].endswith(".py") else f"{words[0]} --help"


def _script(mode: str, body: str) -> str:
    kind = mode.split()[0]
    if kind in ("run", "smoke"):
        return body
    if kind == "dry-run":
        return "\n".join(c + " --dry-run" if " sweep " in c else c for c in commands(body))
    return "\n".join(_help_command(c) for c in commands(body))


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(readme_blocks())))
def test_readme_block_runs_as_written_in_a_fresh_copy(fresh_copy, index):
    mode, body = readme_blocks()[index]
    if mode.startswith("skip"):
        pytest.skip(mode)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MMTUTORIAL_SMOKE", None)
    if mode.startswith("smoke"):
        env["MMTUTORIAL_SMOKE"] = "1"
    # The set-up environment counts as current, whatever the files' dates in the copy: else
    # `make` would reinstall the linked .venv from the copy, and leave the developer's
    # environment importing mmtutorial from a temporary folder. (make ignores -o/--old-file
    # in the MAKEFLAGS variable, so it goes on every make command line.)
    keep_setup = 'make() { command make --old-file=.venv/.installed "$@"; }\n'
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", keep_setup + _script(mode, body)],
        cwd=fresh_copy,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, (
        f"README block {index} ({mode}) failed:\n{body}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    )
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
