"""Issue 20, row 12 (the CLI's part): whatever fails, the CLI says so in one line and exits
non-zero, never with a traceback (``--debug`` or ``OFFBOARDING_DEBUG=1`` shows it).
``status`` of an offboarding whose status exceeded Temporal's size limit printed one."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode


class _Handle:
    def __init__(self, error: BaseException) -> None:
        self.error = error

    async def query(self, *args: Any, **kwargs: Any) -> Any:
        raise self.error


class _Client:
    """Just enough of a Temporal client for ``status``: its query fails with ``error``."""

    def __init__(self, error: BaseException) -> None:
        self.error = error

    def get_workflow_handle(self, *args: Any, **kwargs: Any) -> _Handle:
        return _Handle(self.error)


@pytest.fixture(autouse=True)
def _no_settings_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OFFBOARDING_ENV_FILE", "/nonexistent")
    monkeypatch.delenv("OFFBOARDING_DEBUG", raising=False)


async def _status(error: BaseException, *flags: str) -> int:
    from offboarding.cli.main import run_cli

    client = cast(Client, _Client(error))
    return await run_cli(["status", "offboarding-acme", *flags], client=client,
                         out=io.StringIO())


TOO_BIG = [
    WorkflowQueryFailedError("Blob data size exceeds limit.\nsecond line of detail"),
    RPCError("grpc: received message larger than max (4200000 vs. 4194304)",
             RPCStatusCode.RESOURCE_EXHAUSTED, b""),
    RPCError("Blob data size exceeds limit.", RPCStatusCode.INVALID_ARGUMENT, b""),
]


@pytest.mark.parametrize("error", TOO_BIG, ids=lambda e: type(e).__name__)
async def test_status_too_large_for_temporal_is_one_line(
    capsys: pytest.CaptureFixture[str], error: BaseException,
) -> None:
    assert await _status(error) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("error: ") and ("exceeds limit" in err or "larger than max" in err)
    assert "offboarding-acme" in err or "Temporal" in err


@pytest.mark.parametrize("error", [RuntimeError("boom\nand more"), KeyError("x"),
                                   ValueError(""), RecursionError("maximum recursion depth")],
                         ids=lambda e: type(e).__name__)
async def test_any_unexpected_failure_is_one_line_without_a_traceback(
    capsys: pytest.CaptureFixture[str], error: BaseException,
) -> None:
    assert await _status(error) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"error: unexpected {type(error).__name__}")
    assert "--debug" in err, "says how to see more"


async def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    assert await _status(RuntimeError("boom"), "--debug") == 1
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("OFFBOARDING_DEBUG", "1")
    assert await _status(RuntimeError("boom")) == 1
    assert "Traceback" in capsys.readouterr().err
