"""The package's layers import only downward: a newcomer can trust the folder names."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cleanup_pipeline"

# Which of the package's own layers each layer may import (itself always allowed).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "aws": {"core"},
    "observability": {"core"},
    "actions": {"core", "aws"},
}


def _imported_layers(path: Path) -> set[str]:
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            parts = name.split(".")
            if parts[0] == "cleanup_pipeline" and len(parts) > 1:
                layers.add(parts[1])
    return layers


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below_it(layer: str) -> None:
    offending = {
        str(path.relative_to(PACKAGE)): sorted(_imported_layers(path) - ALLOWED[layer] - {layer})
        for path in sorted((PACKAGE / layer).glob("*.py"))
    }
    assert {path: found for path, found in offending.items() if found} == {}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
    return names


def test_tests_share_helpers_only_through_tests_support() -> None:
    tests = PACKAGE.parent / "tests"
    offending = {
        str(path.relative_to(tests)): found
        for path in sorted(tests.rglob("*.py"))
        if (
            found := [
                name
                for name in _imports(path)
                if name.startswith(".")
                or (name.startswith("tests.") and not name.startswith("tests.support"))
            ]
        )
    }
    assert offending == {}
