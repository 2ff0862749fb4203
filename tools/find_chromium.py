#!/usr/bin/env python3
"""Find the Chromium that the browser tests drive (standard library only: runs before setup).

    python3 tools/find_chromium.py            # print the browser's path, or say what is missing
    python3 tools/find_chromium.py --install  # on Debian/Ubuntu, install it with apt-get when missing

Looks at $MMTUTORIAL_CHROMIUM, then `chromium`, `chromium-browser`, `google-chrome` on PATH,
then the usual macOS application paths. Exit code 0 when found (or installed), 2 otherwise,
with one message that says how to get one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MACOS = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)


def find() -> str | None:
    named = os.environ.get("MMTUTORIAL_CHROMIUM")
    if named:
        return named if os.access(named, os.X_OK) else None
    for name in NAMES:
        if shutil.which(name):
            return shutil.which(name)
    return next((path for path in MACOS if os.access(path, os.X_OK)), None)


def install() -> bool:
    """apt-get install chromium (as root, or with sudo), quietly; True if it worked."""
    if not shutil.which("apt-get"):
        return False
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None:
        return False
    print("installing Debian's chromium for the browser tests (about 30 s) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = [*prefix, "apt-get", "install", "-y", "-qq", "chromium"]
    if subprocess.run(command, env=env, capture_output=True).returncode != 0:
        subprocess.run([*prefix, "apt-get", "update", "-qq"], env=env, capture_output=True)
        if subprocess.run(command, env=env, capture_output=True).returncode != 0:
            return False
    return find() is not None


def main(argv: list[str]) -> int:
    found = find()
    if found is None and "--install" in argv and not os.environ.get("MMTUTORIAL_CHROMIUM"):
        found = find() if install() else None
    if found is None:
        named = os.environ.get("MMTUTORIAL_CHROMIUM")
        problem = (
            f"MMTUTORIAL_CHROMIUM={named} is not an executable file"
            if named
            else "no Chromium found (the browser tests of `make test` need one)"
        )
        print(
            f"error: {problem}. Install it (Debian/Ubuntu: sudo apt-get install chromium; macOS: brew install "
            "--cask chromium) or point MMTUTORIAL_CHROMIUM at a Chromium or Chrome binary, e.g. "
            "make test MMTUTORIAL_CHROMIUM=/path/to/chrome. `make check` needs no browser.",
            file=sys.stderr,
        )
        return 2
    print(f"browser for the browser tests: {found}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
