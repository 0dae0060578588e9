"""Issue 20, rows 6, 7, 9 and 12: client files that were valid and should not have been,
and one that made ``validate`` print a traceback."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools.examples import example_client
from offboarding.activities.data_sets import read_document
from offboarding.cli.main import run_cli
from offboarding.models.loading import InputError, load_client_file, own_problems
from tests.conftest import EXAMPLES
from tests.unit.test_client_file import _example, _write

# ----- row 6: documents are the client's own ----------------------------------------------


def test_a_document_of_another_client_is_refused_naming_the_field_and_value(
    tmp_path: Path,
) -> None:
    data = _example()
    data["client_id"] = "globex-retail"
    data["data_sets"] = []
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    text = str(err.value)
    assert "documents.0.path: 'acme-analytics/runbook.md' is not in the client's own folder; " \
        "documents of globex-retail live under globex-retail/ in the documents root" in text
    assert "documents.1.path: 'acme-analytics/data-dictionary.csv'" in text


def test_the_clients_own_documents_are_valid(tmp_path: Path) -> None:
    data = _example()
    data["documents"] = [{"title": "Runbook", "path": "acme-analytics/ops/runbook.md"}]
    assert load_client_file(_write(tmp_path, data)).documents[0].path.startswith(
        "acme-analytics/")


# ----- row 7: a key given twice ----------------------------------------------------------

YAML_TWICE = """\
client_id: acme-analytics
approvers:
  finance: [finance.lead@example.com]
  data_verification: [tom.becker@acme-analytics.example]
retention_days: 30
approvers:
  finance: [mallory@evil.example]
  data_verification: [mallory@evil.example]
"""


def test_a_yaml_key_given_twice_is_refused_naming_the_key_and_both_lines(
    tmp_path: Path,
) -> None:
    path = tmp_path / "twice.yaml"
    path.write_text(YAML_TWICE)
    with pytest.raises(InputError) as err:
        load_client_file(path)
    assert "'approvers' is given twice, on lines 2 and 6" in str(err.value)
    assert str(path) in str(err.value)


def test_a_nested_or_json_key_given_twice_is_refused(tmp_path: Path) -> None:
    data = _example()
    text = yaml.safe_dump(data, sort_keys=False)
    text = text.replace("retention_days: 30\n", "retention_days: 30\nretention_days: 3650\n")
    twice = tmp_path / "twice.yaml"
    twice.write_text(text)
    line = text.splitlines().index("retention_days: 30") + 1
    with pytest.raises(InputError, match=f"'retention_days' is given twice, on lines {line} "
                                         f"and {line + 1}"):
        load_client_file(twice)
    nested = tmp_path / "nested.yaml"
    nested.write_text(yaml.safe_dump(data, sort_keys=False).replace(
        "  finance:\n", "  finance:\n  - mallory@evil.example\n  finance:\n", 1))
    with pytest.raises(InputError, match="'finance' is given twice"):
        load_client_file(nested)
    body = json.dumps(data, indent=2, default=str)
    body = body.replace('"retention_days": 30', '"retention_days": 30,\n  "retention_days": 1')
    as_json = tmp_path / "twice.json"
    as_json.write_text(body)
    line = body.splitlines().index('  "retention_days": 30,') + 1
    with pytest.raises(InputError, match=f"'retention_days' is given twice, on lines {line} "
                                         f"and {line + 1}"):
        load_client_file(as_json)


def test_json_files_still_load(tmp_path: Path) -> None:
    data = _example()
    path = tmp_path / "client.json"
    path.write_text(json.dumps(data, default=str))
    assert load_client_file(path).client_id == "acme-analytics"
    broken = tmp_path / "broken.json"
    broken.write_text('{"client_id": "x",}')
    with pytest.raises(InputError, match=r"cannot be parsed: .*line 1"):
        load_client_file(broken)


def test_yaml_merge_keys_are_not_duplicates(tmp_path: Path) -> None:
    text = yaml.safe_dump(_example(), sort_keys=False)
    text = text.replace("approvers:\n", "base: &base {finance: [cfo@example.com]}\n"
                        "approvers:\n  <<: *base\n", 1)
    path = tmp_path / "merge.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:  # refused for the unknown key only
        load_client_file(path)
    assert "base: Extra inputs are not permitted" in str(err.value)
    assert "twice" not in str(err.value)


# ----- row 9: data set names collide in the zip ------------------------------------------

@pytest.mark.parametrize(("first", "second"), [("a/b", "a_b"), ("Reports", "reports"),
                                                ("CRM export", "CRM_export"), ("x.", "x")])
def test_data_set_names_the_same_in_the_zip_are_refused_naming_both(
    tmp_path: Path, first: str, second: str,
) -> None:
    data = _example()
    data["data_sets"][0]["name"] = first
    data["data_sets"][1]["name"] = second
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    assert f"data_sets.1.name: {second!r} is the same folder in the export as data_sets.0.name " \
        f"{first!r}" in str(err.value)


# ----- row 12: nesting, and never a traceback --------------------------------------------

@pytest.mark.parametrize(("name", "text"), [
    ("deep.yaml", "client_id: " + "[" * 10_000 + "]" * 10_000 + "\n"),
    ("deep-block.yaml", "".join("  " * i + f"k{i}:\n" for i in range(300)) + "  " * 300 + "x"),
    ("deep.json", '{"client_id": ' + "[" * 10_000 + "]" * 10_000 + "}"),
    ("deep-objects.json", '{"a": ' * 10_000 + "1" + "}" * 10_000),
])
async def test_a_deeply_nested_file_is_one_line_of_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, text: str,
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=r"nests deeper than \d+ levels \(at line \d+\)"):
        load_client_file(path)
    assert await run_cli(["validate", str(path)], out=io.StringIO()) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith(f"error: {path} cannot be parsed: it nests deeper than")


def test_the_examples_still_validate() -> None:
    for example in EXAMPLES.glob("*.yaml"):
        cf = load_client_file(example)
        assert all(d.path.startswith(f"{cf.client_id}/") for d in cf.documents)



def test_example_clients_can_keep_their_documents_in_their_own_folder(tmp_path: Path) -> None:
    """devtools/examples.py: given a documents root, the example's documents are copied
    into the new client's own folder, as its data sets are."""
    docs = tmp_path / "documents"
    cf = example_client(tag="t1", data_root=tmp_path / "data", documents_root=docs)
    assert own_problems(cf) == []
    assert [d.path for d in cf.documents] == [f"{cf.client_id}/runbook.md",
                                              f"{cf.client_id}/data-dictionary.csv"]
    assert all(read_document(docs, d.path) for d in cf.documents)
    without = example_client(tag="t2", data_root=tmp_path / "data")
    assert own_problems(without)[0].startswith(
        "documents.0.path: 'acme-analytics/runbook.md' is not in the client's own folder")


# ----- the same thing listed twice (found by an attacker's pass) -------------------------

@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["documents"].append(dict(d["documents"][0])),
     "documents.2.path: 'acme-analytics/runbook.md' is listed already as documents.0.path"),
    (lambda d: d["data_sets"].append({"name": "Again", "path": d["data_sets"][0]["path"]}),
     "data_sets.2.path: 'acme-analytics/crm-export' is data_sets.0.path"),
    (lambda d: d["data_sets"].append({"name": "Inner",
                                      "path": d["data_sets"][0]["path"] + "/inner"}),
     "data_sets.2.path: 'acme-analytics/crm-export/inner' overlaps data_sets.0.path"),
    (lambda d: d["approvers"]["finance"].append(d["approvers"]["finance"][0].upper()),
     "approvers.finance.2: 'FINANCE.LEAD@example.com' is listed already as "
     "approvers.finance.0"),
])
def test_the_same_thing_listed_twice_is_refused(tmp_path: Path, change: Any,
                                                 expected: str) -> None:
    data = _example()
    change(data)
    with pytest.raises(InputError) as err:
        load_client_file(_write(tmp_path, data))
    assert expected in str(err.value)
