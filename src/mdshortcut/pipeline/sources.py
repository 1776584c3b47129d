"""The source files a rule runs, for its ``code=`` input: Snakemake tracks a rule's script, not
the package modules the script imports, so each rule names them as inputs and reruns when one
changes (and only then)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "mdshortcut"
ROOT = Path(__file__).resolve().parents[1]  # the package's folder


def _file(module: str) -> Path | None:
    """The source file of a module of this package (found without importing anything), None for
    anything else."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    base = ROOT.joinpath(*parts[1:])
    return next((path for path in (base.with_suffix(".py"), base / "__init__.py") if path.is_file()), None)


def _imported(module: str, path: Path) -> set[str]:
    """Modules a source file imports anywhere (function-level imports too), with the packages
    whose ``__init__`` runs first and the submodules named by ``from package import name``."""
    is_package = path.name == "__init__.py"
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join(parts + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    parents = {".".join(n.split(".")[:k]) for n in names for k in range(1, n.count(".") + 1)}
    return {n for n in names | parents if _file(n) is not None}


def sources(*modules: str) -> list[str]:
    """Source files (sorted paths) of ``modules``, of the packages that hold them and of every
    package module they import, directly or not (imports inside functions too: a superset that
    costs no extra rerun, since what a lazy import runs upstream reruns this rule's inputs anyway)."""
    seen: dict[str, Path] = {}
    todo = [".".join(m.split(".")[:k]) for m in modules for k in range(1, m.count(".") + 2)]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _file(module)
        if path is None:
            raise ModuleNotFoundError(f"{module} is not a module of {PACKAGE}")
        seen[module] = path
        todo += sorted(_imported(module, path) - seen.keys())
    return sorted(str(p) for p in seen.values())
