"""A wrong client file is refused before anything starts, naming the field, the value
and what was expected."""

from __future__ import annotations

import io
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from offboarding.cli.main import run_cli
from offboarding.models.loading import InputError, load_client_file
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
    ("client_name", "Acme\r\nBcc: victim@example.com", "client_name: contains the control "
     "character U+000D at position 4; expected one line of printable text"),
    ("systems.0.users", ["a", "a"], "accounts listed twice: a"),
    ("systems.0.mode", "suspend", "systems.0.mode: Input should be 'deactivate' or 'delete'"),
    ("approvers.finance", [], "approvers.finance: List should have at least 1 item"),
    ("surprise", 1, "surprise: Extra inputs are not permitted"),
    ("contract.notice_days", "thirty", "contract.notice_days: Input should be a valid "
     "integer, unable to parse string as an integer (got 'thirty')"),
    ("account.credits.0.amount", "-750.00", "amounts must not be negative"),
    ("contacts.primary", None, "contacts.primary: Input should be a valid dictionary"),
    # Issue 10, row 4: a data set belongs to one client: a folder or file in its own folder.
    ("data_sets.0.path", ".", "data_sets.0.path: '.' names the whole data root"),
    ("data_sets.0.path", "./", "names the whole data root"),
    ("data_sets.0.path", "acme-analytics/./reports", "'.' is not a path segment"),
    # Row 7: every text that can reach a mail header refuses control and line separators.
    ("contract.reference", "MSA\x0bReply-To : attacker@evil.example", "contract.reference: "
     "contains the control character U+000B"),
    ("client_name", "Acme\x0cBcc: victim@example.com", "contains the control character U+000C"),
    ("client_name", "Acme\x1cX", "U+001C"),
    ("client_name", "Acme\x1dX", "U+001D"),
    ("client_name", "Acme\x1eX", "U+001E"),
    ("client_name", "Acme\x85X", "U+0085"),
    ("client_name", "Acme\u2028Bcc: victim@example.com", "the line separator U+2028"),
    ("client_name", "Acme\u2029X", "U+2029"),
    ("client_name", "Acme\u202eX", "the bidirectional control U+202E"),
    ("contacts.primary.name", "Priya\tRaman", "U+0009"),
    # Row 9: money has a documented range; never a traceback.
    ("account.invoices.0.amount", "12345678901234567890123456.00",
     "account.invoices.0.amount: amount '12345678901234567890123456.00' is out of range; "
     "amounts are at most 999,999,999,999.99"),
    ("account.invoices.0.amount", "1E+30", "is out of range"),
    ("account.credits.0.amount", "1e400", "is out of range"),
    ("account.invoices.0.amount", "NaN", "expected a finite amount"),
    # Row 10: an invoice cannot be paid above its amount.
    ("account.invoices.0.paid", "999999.00", "account.invoices.0: paid 999999.00 is more than "
     "the invoice's amount 12500.00"),
    ("account.invoices.1.paid", "-1.00", "paid must not be negative"),
    # Row 11: the payments and what the invoices record as paid describe the same money.
    ("account.payments.0.amount", "12000.00", "account: the invoices record 12500.00 as paid "
     "but account.payments adds up to 12000.00"),
    # Row 19: accounts that differ only in case are the same account on most systems.
    ("systems.0.users", ["Tom.Becker", "tom.becker"], "accounts listed twice (ignoring case): "
     "tom.becker"),
    # Row 6: what a client file may hold is bounded, naming the number.
    ("account.invoices", [{"number": f"INV-{i}", "amount": "1.00", "issued": "2026-01-01",
                           "due": "2026-02-01"} for i in range(1001)],
     "account.invoices: List should have at most 1000 items after validation, not 1001"),
    ("contract.end_date", "2125-01-01", "contract.end_date 2125-01-01 is more than 100 years "
     "after start_date 2024-01-01"),
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
    with pytest.raises(InputError, match="a client file may be at most 500000"):
        load_client_file(huge)


async def test_validate_checks_a_file_without_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert await run_cli(["validate", str(EXAMPLES / "termination.yaml")], out=out) == 0
    assert "valid (globex-retail, termination" in out.getvalue()


def test_a_data_set_outside_the_clients_own_folder_is_refused(tmp_path: Path) -> None:
    """Row 4: a data set is a folder or file under the root that belongs to one client,
    its own folder named by its client id; another client's folder is refused."""
    data = _example()
    data["data_sets"][0]["path"] = "globex-retail/orders.csv"
    data["data_sets"][1]["path"] = "acme-analytics"
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    assert "data_sets.0.path: 'globex-retail/orders.csv' is not in the client's own folder; " \
        "data sets of acme-analytics live under acme-analytics/" in str(err.value)
    assert "data_sets.1" not in str(err.value), "the client's whole folder is its own"


def test_an_end_date_beyond_the_horizon_is_refused(tmp_path: Path) -> None:
    """Row 19: an offboarding plans at most ten years ahead."""
    data = _example()
    far = date.today().replace(year=date.today().year + 11)
    data["contract"]["end_date"] = far.isoformat()
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    assert f"contract.end_date: {far} is more than 10 years from today" in str(err.value)
    data["contract"]["end_date"] = "9999-12-31"
    with pytest.raises(InputError, match="more than 100 years after start_date"):
        load_client_file(_write(tmp_path, data))


def test_a_client_file_too_large_for_temporal_is_refused_naming_the_limit(
    tmp_path: Path,
) -> None:
    """Row 6: 10,000 invoices made an 841 KB file the workflow could not carry."""
    data = _example()
    data["account"]["invoices"] = [
        {"number": f"INV-{i:05d}", "amount": "10.00", "issued": "2026-01-01",
         "due": "2026-02-01"} for i in range(10_000)]
    data["account"]["payments"] = []
    path = _write(tmp_path, data)
    assert path.stat().st_size > 500_000
    with pytest.raises(InputError, match=r"is \d+ bytes; a client file may be at most 500000"):
        load_client_file(path)
