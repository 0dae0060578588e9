"""A wrong client file is refused before anything starts, naming the field, the value
and what was expected."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
import yaml
from temporalio.testing import WorkflowEnvironment

from models.loading import InputError, load_client_file
from starter import run_cli
from tests.conftest import EXAMPLES


def _example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((EXAMPLES / "contract-end.yaml").read_text())
    return data


def _write(tmp_path: Path, data: dict[str, Any], name: str = "client.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_both_examples_are_valid() -> None:
    assert load_client_file(EXAMPLES / "contract-end.yaml").reason == "contract_end"
    assert load_client_file(EXAMPLES / "termination.yaml").reason == "termination"


BAD: list[tuple[str, Any, str]] = [
    ("contacts.billing.email", "not-an-email", "contacts.billing.email: value is not a valid "
     "email address"),
    ("contract.notice_days", 7, "contract.notice_days: Input should be greater than or equal "
     "to 14 (got 7)"),
    ("contract.notice_days", 120, "Input should be less than or equal to 90 (got 120)"),
    ("contract.end_date", "2023-01-01", "end_date 2023-01-01 must be after start_date "
     "2024-01-01"),
    ("account.invoices.0.amount", 12500.5, "account.invoices.0.amount: amount 12500.5 is a "
     "float; write money as a string such as '12500.50'"),
    ("account.invoices.0.amount", "12.345", "has more than two decimal places"),
    ("account.currency", "DOGE", "unknown currency 'DOGE'; expected an ISO 4217 code"),
    ("reason", "bankruptcy", "reason: Input should be 'contract_end' or 'termination' "
     "(got 'bankruptcy')"),
    ("data_sets.0.path", "../../etc/passwd", "must be a relative path inside its root"),
    ("client_name", "Acme\r\nBcc: victim@example.com", "client_name: must be a single line"),
    ("systems.0.users", ["a", "a"], "accounts listed twice: a"),
    ("systems.0.mode", "suspend", "systems.0.mode: Input should be 'deactivate' or 'delete'"),
    ("approvers.finance", [], "approvers.finance: List should have at least 1 item"),
    ("surprise", 1, "surprise: Extra inputs are not permitted"),
    ("contract.notice_days", "thirty", "contract.notice_days: Input should be a valid "
     "integer, unable to parse string as an integer (got 'thirty')"),
    ("account.credits.0.amount", "-750.00", "amounts must not be negative"),
    ("contacts.primary", None, "contacts.primary: Input should be a valid dictionary"),
]


@pytest.mark.parametrize("field", ["client_id", "contacts", "contract", "approvers"])
def test_a_missing_field_is_named(tmp_path: Path, field: str) -> None:
    data = _example()
    del data[field]
    with pytest.raises(InputError, match=f"{field}: Field required"):
        load_client_file(_write(tmp_path, data))


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value


@pytest.mark.parametrize(("field", "value", "message"), BAD)
def test_a_wrong_field_is_named_with_its_value(tmp_path: Path, field: str, value: Any,
                                               message: str) -> None:
    data = _example()
    _set(data, field, value)
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    assert message in str(err.value)


def test_termination_needs_a_cause(tmp_path: Path) -> None:
    data = _example()
    data["reason"] = "termination"
    with pytest.raises(InputError, match="reason 'termination' needs a 'termination' section"):
        load_client_file(_write(tmp_path, data))


def test_unparseable_and_oversized_files_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_id": ')
    with pytest.raises(InputError, match="cannot be parsed"):
        load_client_file(broken)
    huge = tmp_path / "huge.yaml"
    huge.write_text("# " + "x" * 1_100_000)
    with pytest.raises(InputError, match="a client file may be at most 1000000"):
        load_client_file(huge)


async def test_start_refuses_a_wrong_file_before_anything_starts(
    dev_env: WorkflowEnvironment, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    data = _example()
    data["client_id"] = "refused-client"
    data["contract"]["notice_days"] = 5
    path = _write(tmp_path, data)
    code = await run_cli(["start", "--client-file", str(path)], client=dev_env.client)
    assert code == 1
    assert "contract.notice_days: Input should be greater than or equal to 14 (got 5)" in \
        capsys.readouterr().err
    found = [wf async for wf in dev_env.client.list_workflows(
        'WorkflowId = "offboarding-refused-client"')]
    assert found == []


async def test_validate_checks_a_file_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert await run_cli(["validate", str(EXAMPLES / "termination.yaml")], out=out) == 0
    assert "valid (globex-retail, termination" in out.getvalue()
