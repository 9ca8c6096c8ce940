"""No ImportError guard around the package's own modules (only optional third-party ones)."""
from __future__ import annotations

import ast
from pathlib import Path

import stagelab

PACKAGE = Path(stagelab.__file__).parent


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in {"ImportError", "ModuleNotFoundError"} for n in names)


def _imports_own_module(body: list[ast.stmt]) -> bool:
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("stagelab")):
                return True
            if isinstance(node, ast.Import) and any(a.name.startswith("stagelab") for a in node.names):
                return True
    return False


def own_module_guards(source: str) -> list[int]:
    """Line numbers of ``try:`` blocks that import a stagelab module and catch ImportError."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Try) and _imports_own_module(node.body)
            and any(_catches_import_error(h) for h in node.handlers)]


def test_the_detector_finds_a_guard() -> None:
    guarded = "try:\n    from .profiles import active_profile\nexcept ImportError:\n    pass\n"
    third_party = "try:\n    import ipywidgets\nexcept ImportError:\n    pass\n"
    assert own_module_guards(guarded) == [1]
    assert own_module_guards(third_party) == []


def test_no_module_guards_its_own_package_imports() -> None:
    found = {path.relative_to(PACKAGE).as_posix(): lines for path in sorted(PACKAGE.rglob("*.py"))
             if (lines := own_module_guards(path.read_text(encoding="utf-8")))}
    assert not found, f"ImportError guards around the package's own imports (make them plain imports): {found}"
