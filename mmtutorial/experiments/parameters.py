"""A notebook's parameters: read from its ``parameters`` cell, checked before any kernel starts.

Papermill only warns about an unknown parameter name (the run then silently uses the
default), and a bad value would only fail once the kernel has started and imported
everything. :func:`check_parameters` catches both in the calling process, in
milliseconds: names against the ``parameters`` cell, values against the notebook's
``setup(...)`` declarations (``Param(value, kind, low=, high=, choices=)``), including
bounds and choices given by a constant imported from the package
(``choices=FUSIONS`` with ``from mmtutorial.models.av_fusion import FUSIONS``).
"""

from __future__ import annotations

import ast
import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..course.notebook import Param

__all__ = [
    "check_notebook_path",
    "notebook_parameters",
    "check_parameter_names",
    "declared_parameters",
    "check_parameters",
]


def check_notebook_path(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it names an existing ``.ipynb`` file, else a one-line
    ``FileNotFoundError`` / ``ValueError`` that names it."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no notebook at {path}")
    if path.is_dir() or path.suffix != ".ipynb":
        raise ValueError(f"{path} is not a notebook (expected a .ipynb file)")
    return path


def notebook_parameters(path: str | os.PathLike) -> dict[str, Any]:
    """The names and default values of a notebook's ``parameters`` cell.

    Raises a one-line ``FileNotFoundError`` or ``ValueError`` naming the file when it is
    missing, not a notebook, or has no cell tagged ``parameters``.
    """
    import papermill

    path = check_notebook_path(path)
    try:
        found = papermill.inspect_notebook(str(path))
    except (ValueError, KeyError, AttributeError, UnicodeDecodeError) as error:  # NotJSONError is a ValueError
        raise ValueError(f"{path} is not a valid notebook ({type(error).__name__})") from None
    if not found:
        raise ValueError(f"{Path(path).name} has no cell tagged 'parameters'")
    defaults = {}
    for name, info in found.items():
        try:
            defaults[name] = ast.literal_eval(info["default"])
        except (ValueError, SyntaxError):
            defaults[name] = info["default"]
    return defaults


def check_parameter_names(
    path: str | os.PathLike, parameters: Mapping[str, Any], known: Mapping[str, Any] | None = None
) -> None:
    """Raise ``ValueError`` naming the parameters the notebook does not have, and its
    valid parameters with their defaults. ``known``: the notebook's
    :func:`notebook_parameters`, when already read."""
    known = notebook_parameters(path) if known is None else known
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(
            f"{Path(path).name}: unknown parameter(s) {unknown}; valid parameters are "
            f"{', '.join(f'{k}={v!r}' for k, v in known.items())}"
        )


_KINDS = {"int": int, "float": float, "str": str, "bool": bool, "list": list, "tuple": tuple, "dict": dict}
_UNRESOLVED = object()


def _package_imports(tree: ast.AST) -> dict[str, tuple[str, str | None]]:
    """``name -> (module, attribute)`` for the notebook's ``from mmtutorial... import``s
    (attribute None for an imported module)."""
    found: dict[str, tuple[str, str | None]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "mmtutorial":
            for alias in node.names:
                found[alias.asname or alias.name] = (node.module, alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "mmtutorial":
                    found[alias.asname or alias.name.split(".")[0]] = (
                        alias.asname and alias.name or "mmtutorial",
                        None,
                    )
    return found


def _resolve(node: ast.AST, imports: Mapping[str, tuple[str, str | None]]) -> Any:
    """A literal, or a constant of the package the notebook imported by name
    (``FUSIONS``, ``av_fusion.FUSIONS``); otherwise ``_UNRESOLVED``."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    chain: list[str] = []
    while isinstance(node, ast.Attribute):
        chain.insert(0, node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in imports:
        return _UNRESOLVED
    module, attribute = imports[node.id]
    try:
        value = importlib.import_module(module)
        if attribute is not None:
            value = (
                getattr(value, attribute)
                if hasattr(value, attribute)
                else importlib.import_module(f"{module}.{attribute}")
            )
        for name in chain:
            value = getattr(value, name)
    except (ImportError, AttributeError):
        return _UNRESOLVED
    return value


def declared_parameters(path: str | os.PathLike) -> dict[str, Param]:
    """The ``Param(...)`` declarations of the notebook's ``setup(...)`` call (plus the
    ``smoke``, ``device`` and ``seed`` that ``setup`` itself checks). Kinds, bounds and
    choices are read where they are literals or package constants; anything else is
    left to the notebook, which still checks it when it runs."""
    cells = json.loads(Path(path).read_text()).get("cells", [])
    sources = ["".join(c.get("source", [])) for c in cells if c.get("cell_type") == "code"]
    trees = []
    for source in sources:
        try:
            trees.append(ast.parse(source))
        except SyntaxError:  # IPython magics: that cell declares nothing we can read
            continue
    imports = {k: v for tree in trees for k, v in _package_imports(tree).items()}
    declared: dict[str, Param] = {
        "smoke": Param(False, bool),
        "device": Param("auto", str),
        "seed": Param(0, int, low=0),
    }
    for tree in trees:
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and getattr(call.func, "id", None) == "setup"):
                continue
            for keyword in call.keywords:
                value = keyword.value
                if not (isinstance(value, ast.Call) and getattr(value.func, "id", None) == "Param"):
                    continue
                kind = value.args[1] if len(value.args) > 1 else None
                kinds = kind.elts if isinstance(kind, ast.Tuple) else [kind] if kind is not None else []
                resolved = tuple(_KINDS[k.id] for k in kinds if isinstance(k, ast.Name) and k.id in _KINDS)
                options: dict[str, Any] = {}
                for option in value.keywords:
                    if option.arg in ("low", "high", "choices"):
                        found = _resolve(option.value, imports)
                        if found is not _UNRESOLVED:
                            options[option.arg] = found
                declared[keyword.arg] = Param(None, resolved or object, **options)
    return declared


def check_parameters(
    path: str | os.PathLike,
    parameters: Mapping[str, Any],
    known: Mapping[str, Any] | None = None,
    declared: Mapping[str, Param] | None = None,
) -> None:
    """Raise a one-line ``ValueError`` for the first unknown name or bad value of
    ``parameters`` (see :func:`check_parameter_names` and :func:`declared_parameters`),
    before any kernel starts. ``known``/``declared``: already read, for many calls."""
    check_parameter_names(path, parameters, known)
    declared = declared_parameters(path) if declared is None else declared
    for name, value in parameters.items():
        rule = declared.get(name)
        if rule is not None:
            try:
                Param(value, rule.kind, rule.low, rule.high, rule.choices).validate(name)
            except ValueError as error:
                raise ValueError(f"{Path(path).name}: {error}") from None
