#!/usr/bin/env python3
"""Print the pinned requirements of one optional extra of pyproject.toml, one per line.

    python3 tools/extra_requirements.py site

Standard library only (runs before setup; Python 3.10 has no tomllib), so `make site`
can build the site in a small environment without PyTorch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path


def requirements(extra: str) -> list[str]:
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    found = re.search(rf"^{re.escape(extra)} = \[(.*?)^\]", text, flags=re.M | re.S)
    if not found:
        raise SystemExit(f"error: pyproject.toml has no optional extra {extra!r}")
    return re.findall(r'"([^"]+)"', found.group(1))


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1] if len(sys.argv) > 1 else "site")))
