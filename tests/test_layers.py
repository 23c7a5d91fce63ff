"""The import graph keeps its one direction: cli → commands → daemon → capture/restore/output → optics → basics.

Every import in deblurd/ (module level and inside functions) is checked, and tools/ may import deblurd but
deblurd never imports tools. The layers are the ones DESIGN.md draws; each package's __init__ says the same.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "deblurd"
LAYER = {"__main__": 6, "cli": 5, "commands": 4, "daemon": 3, "capture": 2, "restore": 2, "output": 2, "optics": 1}
"""Higher layers may import lower ones; a part not named here is a top-level basic (layer 0)."""


def part_of(module: str) -> str:
    """`deblurd.output.store` → `output`; `deblurd.config` → `config`."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every absolute module name the file imports, with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if node.module == "deblurd"]
    return found


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def violations() -> list[str]:
    bad = []
    for path in sorted(PACKAGE.rglob("*.py")):
        here = part_of(module_name(path))
        for line, name in imports_of(path):
            where = f"{path.relative_to(ROOT)}:{line} imports {name}"
            if name == "tools" or name.startswith("tools."):
                bad.append(f"{where}: deblurd never imports tools")
            elif name.startswith("deblurd."):
                there = part_of(name)
                if there != here and LAYER.get(there, 0) >= LAYER.get(here, 0) and LAYER.get(there, 0) > 0:
                    bad.append(f"{where}: {here} (layer {LAYER.get(here, 0)}) may not import {there} "
                               f"(layer {LAYER.get(there, 0)})")
    return bad


def test_deblurd_imports_go_one_way() -> None:
    assert violations() == []


@pytest.mark.parametrize("package", sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()))
def test_every_package_says_what_lives_there_and_what_it_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "May import" in doc, f"deblurd/{package}/__init__.py needs a docstring with 'May import'"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """A layer-2 module importing the daemon is reported (the check above cannot pass vacuously)."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from deblurd.daemon.pipeline import Pipeline\n")
    assert imports_of(path) == [(2, "deblurd.daemon.pipeline")]
    assert LAYER[part_of("deblurd.daemon.pipeline")] > LAYER[part_of("deblurd.output.store")]
