"""The layer's shape: AWS is called only from mirrorcap.aws, every adapter translates AWS errors, and each
step's names line up (state, function folder, module, function, models, metric)."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
import re
from pathlib import Path

import mirrorcap
import mirrorcap.aws
import pytest
from mirrorcap import models
from mirrorcap.handler import step_name
from mirrorcap_tools.offline.world import load_handler
from mirrorcap_tools.template import PROJECT_ROOT, load_template, resources_of_type

LAYER = Path(mirrorcap.__file__).parent
ADAPTERS = LAYER / "aws"
# The client factory builds the clients the adapters use; nothing else outside mirrorcap.aws may.
CLIENT_FACTORY = LAYER / "runtime.py"
FUNCTIONS = resources_of_type(load_template(), "AWS::Serverless::Function")
ASL = json.loads((PROJECT_ROOT / "statemachine" / "capture.asl.json").read_text())


def _modules(package) -> list[str]:
    return [info.name for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")]


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def _calls_of_aws_factory(path: Path) -> list[int]:
    tree = ast.parse(path.read_text())
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "aws"
    ]


@pytest.mark.parametrize(
    "path",
    [p for p in sorted(LAYER.rglob("*.py")) if ADAPTERS not in p.parents and p != CLIENT_FACTORY],
    ids=lambda p: str(p.relative_to(LAYER)),
)
def test_only_the_adapters_touch_aws(path: Path) -> None:
    sdk = {m for m in _imported_modules(path) if m.split(".")[0] in ("boto3", "botocore")}
    assert not sdk, f"{path.name} imports {sdk}: AWS calls belong in mirrorcap.aws"
    assert not _calls_of_aws_factory(path), f"{path.name} builds clients itself (lines {_calls_of_aws_factory(path)})"


@pytest.mark.parametrize("module_name", [m for m in _modules(mirrorcap.aws) if not m.endswith(".translate")])
def test_every_adapter_function_translates_aws_errors(module_name: str) -> None:
    module = importlib.import_module(module_name)
    public = [
        (name, value)
        for name, value in vars(module).items()
        if inspect.isfunction(value) and not name.startswith("_") and value.__module__ == module_name
    ]
    assert public, f"{module_name} has no adapter functions"
    untranslated = [name for name, value in public if not getattr(value, "translates_aws_errors", False)]
    assert not untranslated, f"{module_name}: wrap {untranslated} in @translated_errors"


def test_adapters_name_every_aws_method_literally() -> None:
    """grep must find every call the code makes: no getattr(client, name)."""
    for path in ADAPTERS.glob("*.py"):
        tree = ast.parse(path.read_text())
        dynamic = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
        ]
        assert not dynamic, f"{path.name}: getattr at lines {dynamic}"


def _task_states(states: dict) -> dict[str, dict]:
    return {name: state for name, state in states.items() if state["Type"] == "Task"}


@pytest.mark.parametrize("state_name", sorted(_task_states(ASL["States"])))
def test_one_name_per_step(state_name: str) -> None:
    state = ASL["States"][state_name]
    function_name = state["Resource"].removeprefix("${").removesuffix("Arn}")
    assert function_name == f"{state_name}Function"
    folder = FUNCTIONS[function_name]["Properties"]["CodeUri"]
    snake = folder.removeprefix("functions/")
    handler = load_handler(folder)

    assert handler.step.__module__ == f"mirrorcap.steps.{snake}"
    assert handler.step.__name__ == snake
    assert step_name(handler.step) == state_name  # and so the metric is f"{state_name}Succeeded"
    assert handler.input_model is getattr(models, f"{state_name}Input")
    assert handler.output_model is getattr(models, f"{state_name}Output")


def test_every_function_is_a_step_and_every_step_a_function() -> None:
    steps = {name.rsplit(".", 1)[1] for name in _modules(importlib.import_module("mirrorcap.steps"))}
    folders = {spec["Properties"]["CodeUri"].removeprefix("functions/") for spec in FUNCTIONS.values()}
    assert steps == folders
    for name, spec in FUNCTIONS.items():
        handler = load_handler(spec["Properties"]["CodeUri"])
        assert f"{step_name(handler.step)}Function" == name


TESTS = PROJECT_ROOT / "tests"


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda p: str(p.relative_to(TESTS)))
def test_tests_share_helpers_not_each_other(path: Path) -> None:
    """Tests import tests.support (shared helpers) and public names only: never another test module, never
    a private function, so a test can move or a module's internals change without breaking others."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            assert not node.module.split(".")[-1].startswith(("test_", "conftest")), f"imports {node.module}"
            private = [a.name for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
            assert not private, f"imports private {private} from {node.module}"
        elif isinstance(node, ast.Import):
            assert not any(a.name.split(".")[-1].startswith("test_") for a in node.names)


FACTS = PROJECT_ROOT / "docs" / "aws-facts.md"
CITING = ["layers", "functions", "tools", "statemachine", "docs", "template.yaml", "README.md"]


def test_every_cited_aws_fact_exists() -> None:
    """Code cites the repository's own facts page (docs/aws-facts.md#anchor), never a file outside it."""
    anchors = set(re.findall(r'<a id="([a-z0-9-]+)"></a>', FACTS.read_text()))
    cited: dict[str, str] = {}
    for root in CITING:
        for path in [PROJECT_ROOT / root] if (PROJECT_ROOT / root).is_file() else (PROJECT_ROOT / root).rglob("*"):
            if path.is_file() and path.suffix in (".py", ".sh", ".md", ".yaml", ".json"):
                for anchor in re.findall(r"aws-facts\.md#([a-z0-9-]+)", path.read_text()):
                    cited.setdefault(anchor, str(path.relative_to(PROJECT_ROOT)))
    assert cited, "nothing cites docs/aws-facts.md"
    missing = {anchor: where for anchor, where in cited.items() if anchor not in anchors}
    assert not missing, f"cited anchors that docs/aws-facts.md does not have: {missing}"
