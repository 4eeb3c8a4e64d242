"""The package's layers import only downward, with no import circle, and only `aws/` talks to
AWS: a newcomer can trust the folder names."""

import ast
from pathlib import Path

import botocore.session
import pytest
from botocore import xform_name

PACKAGE = Path(__file__).resolve().parents[2] / "cleanup_pipeline"

# Which of the package's own layers each layer may import (itself always allowed): core below
# everything; aws and observability on core; actions on those; orchestration (the Dagster wiring,
# `definitions.py` included) on actions; the command line on top. local/ builds the emulated
# world (tables, bucket, demo data) from core and aws, and only the command line uses it.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "aws": {"core"},
    "observability": {"core"},
    "actions": {"core", "aws", "observability"},
    "orchestration": {"core", "aws", "observability", "actions"},
    "cli": {"core", "aws", "observability", "actions", "orchestration", "local"},
    "local": {"core", "aws"},
}
# Top-level modules of the package and the layer they belong to.
TOP_LEVEL = {"definitions": "orchestration"}

# Layers whose code may call a boto3 client: aws/, and local/, which provisions and seeds the
# emulated world (tables, bucket, SES identity, demo items and files) that the job never builds.
CALLS_AWS = {"aws", "local"}


def _layer_files(layer: str) -> list[Path]:
    files = sorted((PACKAGE / layer).rglob("*.py"))
    files += [PACKAGE / f"{name}.py" for name, owner in TOP_LEVEL.items() if owner == layer]
    return files


def _imported_modules(path: Path) -> set[str]:
    """The package's modules `path` imports (`from pkg import module` names the module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("cleanup_pipeline.") and _file(name)}


def _file(module: str) -> Path | None:
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE / f"{relative}.py", PACKAGE / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _layer(module: str) -> str:
    first = module.split(".")[1]
    return TOP_LEVEL.get(first, first)


def test_every_layer_of_the_package_is_known() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    assert folders == set(ALLOWED)
    assert modules == set(TOP_LEVEL)


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below_it(layer: str) -> None:
    offending = {
        str(path.relative_to(PACKAGE)): found
        for path in _layer_files(layer)
        if (
            found := sorted({_layer(m) for m in _imported_modules(path)} - ALLOWED[layer] - {layer})
        )
    }
    assert offending == {}


def _import_circles() -> list[list[str]]:
    """Each circle of imports between the package's modules (imports inside functions too)."""
    graph = {
        ".".join(
            ("cleanup_pipeline", *path.relative_to(PACKAGE).with_suffix("").parts)
        ).removesuffix(".__init__"): _imported_modules(path)
        for path in PACKAGE.rglob("*.py")
    }
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for imported in sorted(graph.get(module, ())):
            if imported.startswith(module + "."):
                continue  # a package importing its own submodule is no circle
            if state.get(imported) == "open":
                circles.append([*trail[trail.index(imported) :], imported])
            elif imported not in state:
                visit(imported, [*trail, imported])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return circles


# The Dagster wiring and the command line, being re-cut apart from the layers below them.
WIRING = {"orchestration", "cli"}


def test_no_import_circle_below_the_wiring() -> None:
    assert [c for c in _import_circles() if not {_layer(m) for m in c} & WIRING] == []


def test_no_import_circle_in_the_wiring() -> None:
    assert [c for c in _import_circles() if {_layer(m) for m in c} & WIRING] == []


def _client_methods() -> set[str]:
    """Every method of the job's boto3 clients (DynamoDB, S3, SES v2), by its Python name."""
    session = botocore.session.get_session()
    methods = {"get_paginator", "get_waiter", "generate_presigned_url", "generate_presigned_post"}
    for service in ("dynamodb", "s3", "sesv2"):
        methods |= {xform_name(op) for op in session.get_service_model(service).operation_names}
    return methods


def _client_calls(layers: list[str]) -> list[str]:
    """Where code of these layers calls a boto3 client method, or hands one to a helper."""
    methods = _client_methods()
    return [
        f"{path.relative_to(PACKAGE)}:{node.lineno} {ast.unparse(node)}"
        for layer in layers
        for path in _layer_files(layer)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and node.attr in methods
    ]


def test_only_aws_calls_boto3_clients() -> None:
    """Layers other than aws/ (and local/'s emulated world) go through aws/'s named functions."""
    assert _client_calls(sorted(set(ALLOWED) - CALLS_AWS)) == []


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
