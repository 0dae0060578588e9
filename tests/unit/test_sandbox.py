"""The workflow sandbox and native extensions (issue 20, row 1).

A native extension (Rust through pyo3, or C) cannot be initialised twice in one process.
The sandbox imports modules again for every run unless they are passed through, so an
extension that workflow code reaches without being passed through aborts the worker
process (a forged link's failed signature did: ``cryptography`` raising
``InvalidSignature`` from Rust). Checked here without a server: every extension module
that importing the workflow loads belongs to the standard library or to a module the
worker's sandbox passes through. The real-sandbox half, a forged link sent to a running
worker, is in tests/integration/test_message_fuzz.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

from offboarding.worker import sandbox

LIST_EXTENSIONS = """
import importlib.machinery, json, sys
import offboarding.workflows.offboarding
print(json.dumps(sorted(
    name for name, module in list(sys.modules.items())
    if isinstance(getattr(getattr(module, "__spec__", None), "loader", None),
                  importlib.machinery.ExtensionFileLoader))))
"""


def _passed_through(name: str, passthrough: frozenset[str] | set[str]) -> bool:
    parts = name.split(".")
    return any(".".join(parts[:i]) in passthrough for i in range(1, len(parts) + 1))


def test_every_native_extension_the_workflow_reaches_is_passed_through() -> None:
    out = subprocess.run([sys.executable, "-c", LIST_EXTENSIONS], check=True,
                         capture_output=True, text=True).stdout
    extensions = json.loads(out)
    assert "cryptography.hazmat.bindings._rust" in extensions  # the check sees what it must
    passthrough = sandbox().restrictions.passthrough_modules
    stray = [name for name in extensions
             if name.split(".")[0] not in sys.stdlib_module_names
             and not _passed_through(name, passthrough)]
    assert stray == [], (f"native extensions reachable from workflow code but imported "
                         f"again per run by the sandbox: {stray}; add their packages to "
                         "offboarding.worker.PASSED_THROUGH")


def test_the_check_would_see_a_missing_passthrough() -> None:
    passthrough = sandbox().restrictions.passthrough_modules - {"cryptography"}
    assert not _passed_through("cryptography.hazmat.bindings._rust", passthrough)
    assert _passed_through("cryptography.hazmat.bindings._rust",
                           sandbox().restrictions.passthrough_modules)
