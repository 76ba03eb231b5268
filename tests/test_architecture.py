"""The house's rules (docs/ARCHITECTURE.md), checked on the code itself.

- the import contracts of pyproject.toml (layers one way, no circles, no streamlit in gis/) — `lint-imports`;
- no module imports a ``_private`` name from another module of the project;
- back-end differences stay inside gis/store/ (nothing else asks ``store.backend``);
- imports of the project's own modules are at module level (a function-level one hides a circle).
"""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CODE = sorted([*ROOT.glob("gis/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"])


def _lint_imports() -> list[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency (pip install -e '.[test]')"
    return [exe]


def test_import_contracts_are_kept():
    res = subprocess.run(_lint_imports(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "0 broken" in res.stdout


def test_a_broken_layer_is_caught(tmp_path):
    """The contract bites: a module of gis.base importing gis.store is reported."""
    bad = ROOT / "gis" / "base" / "_layer_probe.py"
    bad.write_text("from gis.store import Store  # noqa: F401\n")
    try:
        res = subprocess.run(_lint_imports(), cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        bad.unlink()
    assert res.returncode != 0
    assert "gis.base._layer_probe -> gis.store" in res.stdout


def _imports(path: Path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            p, in_function = parents.get(node), False
            while p is not None:
                in_function |= isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef))
                p = parents.get(p)
            yield node, in_function


def _project_module(node) -> str | None:
    mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
    if isinstance(node, ast.ImportFrom) and node.level:
        return "relative"
    return mod if mod and mod.split(".")[0] in ("gis", "ui") else None


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_private_names_imported_across_modules(path):
    bad = [f"{path.name}:{n.lineno} {a.name}" for n, _ in _imports(path)
           if isinstance(n, ast.ImportFrom) and _project_module(n)
           for a in n.names if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, bad


@pytest.mark.parametrize("path", CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_project_imports_are_at_module_level(path):
    bad = [f"{path.name}:{n.lineno}" for n, in_function in _imports(path) if in_function and _project_module(n)]
    assert not bad, bad


def test_back_end_differences_stay_in_the_store():
    outside = [p for p in CODE if "gis/store/" not in p.as_posix()]
    asked = [f"{p.relative_to(ROOT)}:{i}" for p in outside
             for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if ".backend ==" in line or ".backend !=" in line or "isinstance(store, PostgisStore)" in line]
    assert not asked, asked
