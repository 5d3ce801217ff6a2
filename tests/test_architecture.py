"""The package's architecture (ARCHITECTURE.md) holds: the import-linter contract in pyproject.toml,
no module importing another module's ``_private`` names, and no file outside ``zoo/models/`` over 600 lines."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "zoo"
MAX_LINES = 600


def _lint_imports() -> str | None:
    found = Path(sys.executable).with_name("lint-imports")
    return str(found) if found.is_file() else shutil.which("lint-imports")


def test_import_linter_contracts_are_kept():
    """A new import circle or an upward import (say zoo.flow -> zoo.train) fails here."""
    command = _lint_imports()
    if command is None:
        pytest.fail("lint-imports is not installed: pip install -e '.[test]' installs import-linter")
    result = subprocess.run([command, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "broken" not in result.stdout.lower().replace("0 broken", "")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_private_names(path: Path) -> list[str]:
    """``from X import _name`` in ``path`` where X is another zoo module (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        if not module.startswith("zoo"):
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                found.append(f"{module}.{alias.name}")
    return found


def test_no_module_imports_another_modules_private_names():
    offenders = {str(p.relative_to(ROOT)): names for p in sorted(PACKAGE.rglob("*.py"))
                 if (names := _imported_private_names(p))}
    assert not offenders, offenders


def test_no_file_outside_models_is_over_600_lines():
    long_files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.relative_to(PACKAGE).parts[0] == "models":
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            long_files[str(path.relative_to(ROOT))] = lines
    assert not long_files, f"split these by idea (ARCHITECTURE.md): {long_files}"


def test_import_zoo_does_not_import_the_training_package():
    """The library's core (create_model and the families) loads without the engine."""
    code = ("import sys, zoo; zoo.create_model('r2d_18'); "
            "print(sorted(m for m in sys.modules if m.startswith('zoo.train')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
