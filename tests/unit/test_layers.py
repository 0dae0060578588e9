"""The package's shape (issue 11): lower layers never import higher ones, no import
cycles, and no file grows past what one person reads at once."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "offboarding"
MAX_LINES = 350
LAYERS = {
    # a module in the key's folder may import only what the value lists (of ours)
    "offboarding.models": {"offboarding.models"},
    "offboarding.config": {"offboarding.config", "offboarding.models", "offboarding.security"},
    "offboarding.security": {"offboarding.security", "offboarding.models", "offboarding.config"},
    "offboarding.activities": {"offboarding.activities", "offboarding.models",
                               "offboarding.config", "offboarding.tracing"},
    "offboarding.workflows": {"offboarding.workflows", "offboarding.models",
                              "offboarding.activities", "offboarding.security"},
    # A playbook file read and checked for the CLI: the models, the mailer's template
    # environment and the built-in checklist (workflows/state.py: models only), never the
    # workflow itself.
    "offboarding.playbooks": {"offboarding.playbooks", "offboarding.models",
                              "offboarding.activities", "offboarding.workflows.state"},
    # The typed client (offboarding/client.py) is how everything above reaches Temporal.
    "offboarding.client": {"offboarding.models"},
    # offboarding.replay_check (which loads the workflow code) only when that verb runs.
    "offboarding.cli": {"offboarding.cli", "offboarding.models", "offboarding.config",
                        "offboarding.security", "offboarding.temporal", "offboarding.tracing",
                        "offboarding.client", "offboarding.replay_check",
                        "offboarding.playbooks"},
    "offboarding.portal": {"offboarding.portal", "offboarding.models", "offboarding.config",
                           "offboarding.security", "offboarding.temporal", "offboarding.client",
                           "offboarding.activities", "offboarding.tracing"},
}


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[_module(path)] = found
    return {m: {i for i in found if i in graph} for m, found in graph.items()}


def _layer(module: str) -> str | None:
    return next((layer for layer in LAYERS
                 if module == layer or module.startswith(layer + ".")), None)


def test_lower_layers_import_nothing_above_them() -> None:
    wrong = []
    for module, imported in _imports().items():
        layer = _layer(module)
        if layer is None:
            continue
        for target in imported:
            if _layer(target) not in LAYERS[layer] and target not in LAYERS[layer]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_imports_itself_through_others() -> None:
    graph = _imports()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in graph[module]:
            if target in path:
                cycles.append(" -> ".join([*path[path.index(target):], target]))
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    done: set[str] = set()
    for module in graph:
        if module not in done:
            visit(module, [module])
    assert not cycles, "\n".join(sorted(set(cycles)))


def test_nothing_shipped_imports_the_checkout_only_folders() -> None:
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for folder in ("devtools", "bench", "tests"):
            assert f"from {folder}" not in text and f"import {folder}" not in text, path


def test_no_file_outside_the_tests_is_longer_than_one_reading() -> None:
    long = {str(p.relative_to(ROOT)): n for folder in ("offboarding", "devtools", "bench")
            for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, long


WORKFLOW_MAY_IMPORT = ("__future__", "asyncio", "contextlib", "functools", "collections.abc",
                       "dataclasses", "datetime", "typing", "enum", "temporalio",
                       "offboarding.models", "offboarding.workflows", "offboarding.activities",
                       "offboarding.security.codec", "offboarding.security.links",
                       "email_validator", "idna", "opentelemetry.context")
"""The workflow's modules are passed through the sandbox (imported once per worker, see
workflows/offboarding.py), so the sandbox does not police them: this does. Activities are
imported for their names only (``execute_activity_method``); OpenTelemetry's context is
contextvars, which the trace of a decision rides on (``workflows/causes.py``)."""


CLOCKS = ("workflow", "clock", "run.clock", "self", "self.clock")
"""Who may be asked the time in workflow code: Temporal's clock and the Clock built on it."""


def test_the_workflow_modules_import_nothing_that_does_io_or_reads_a_clock() -> None:
    wrong = []
    for path in (PACKAGE / "workflows").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([node.module or ""] if isinstance(node, ast.ImportFrom)
                     else [a.name for a in node.names] if isinstance(node, ast.Import) else [])
            wrong += [f"{path.name} imports {n}" for n in names
                      if not any(n == ok or n.startswith(ok + ".") for ok in WORKFLOW_MAY_IMPORT)]
            if isinstance(node, ast.Attribute) and node.attr in ("now", "today", "utcnow") \
                    and ast.unparse(node.value) not in CLOCKS:
                wrong.append(f"{path.name}:{node.lineno} reads a clock: {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)
