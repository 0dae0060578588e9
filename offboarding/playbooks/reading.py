"""Reading a playbook file into the ``Playbook`` an offboarding carries, refusing with
one line per problem (naming the field, the value and what was expected) everything that
would otherwise go wrong only once an offboarding runs into it.

The file is read as client files are (``models/loading.py``: size, UTF-8, no key given
twice, bounded nesting, unknown fields refused), then checked as a whole
(``placement.py``), its templates read and rendered (``templates.py``), and hashed: the
label ``name@hash`` says which exact rules and words an offboarding ran by.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from offboarding.models.loading import MAX_DEPTH, InputError, load_model, parse_document
from offboarding.models.playbook import OPTIONAL_STEPS, Playbook, PlaybookFile
from offboarding.playbooks.placement import placement_problems
from offboarding.playbooks.templates import read_templates, template_problems

MAX_PLAYBOOK_BYTES = 100_000
"""A playbook is a page or two; its templates are files of their own."""
MAX_RESOLVED_BYTES = 256 * 1024
"""The resolved playbook as JSON: it travels in the workflow input beside the client file
(500 kB at most), well under Temporal's 2 MB payload limit."""
MAX_VALUES = 20_000
"""Values in the parsed document, an alias counted each time it is used: ten aliases of
ten aliases of ... (a "billion laughs") would otherwise take pydantic forever to check."""


def _where(path: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def refuse_alias_loops(data: Any, source: str) -> None:
    """YAML anchors and aliases make a graph, not a tree: ``a: &x [*x]`` is a list holding
    itself, which every recursive reader of it (pydantic, a repr) follows until it runs out
    of stack. Walked here without recursion, refusing a value inside itself, nesting that
    aliases deepen past ``MAX_DEPTH`` and more than ``MAX_VALUES`` values."""
    stack: list[tuple[Any, tuple[Any, ...], bool]] = [(data, (), False)]
    inside: dict[int, tuple[Any, ...]] = {}
    """The values being walked (by identity), where each was entered."""
    values = 0
    while stack:
        value, path, leaving = stack.pop()
        if leaving:
            inside.pop(id(value), None)
            continue
        values += 1
        if values > MAX_VALUES:
            raise InputError(f"{source} cannot be read: it holds more than {MAX_VALUES} "
                             "values once its YAML aliases (*name) are expanded; expected a "
                             "playbook of a page or two")
        if not isinstance(value, dict | list):
            continue
        if id(value) in inside:
            raise InputError(f"{source} cannot be read: {_where(path)} refers back to "
                             f"{_where(inside[id(value)])}, which holds it (a YAML alias *name "
                             "used inside its own anchor &name); expected plain data, without "
                             "aliases that loop")
        if len(path) >= MAX_DEPTH:
            raise InputError(f"{source} cannot be read: {_where(path)} nests deeper than "
                             f"{MAX_DEPTH} levels once its YAML aliases are expanded")
        inside[id(value)] = path
        stack.append((value, path, True))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        stack.extend((child, (*path, key), False) for key, child in items)


def fingerprint(raw: bytes, templates: dict[str, bytes]) -> str:
    """SHA-256 of the file's bytes and each template's name and bytes (sorted by name),
    each part length-prefixed so that no two different sets of files hash alike."""
    digest = hashlib.sha256()
    parts = [raw, *(x for name in sorted(templates)
                    for x in (f"{name}.txt".encode(), templates[name]))]
    for part in parts:
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _read(path: Path) -> tuple[bytes, str]:
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_PLAYBOOK_BYTES:
        raise InputError(f"{path} is {size} bytes; a playbook may be at most "
                         f"{MAX_PLAYBOOK_BYTES}")
    raw = path.read_bytes()
    try:
        return raw, raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start})") from None


def address_problems(pf: PlaybookFile) -> list[str]:
    """The mailer writes ASCII addresses only (no SMTPUTF8, no IDNA): an address beyond
    them would load and then make every message to it, or every message of the
    offboarding for a reply-to, unbuildable. The address as checked: a domain written
    ``xn--...`` is read as its Unicode form."""
    found = [("mail.reply_to", pf.mail.reply_to)]
    found += [(f"gates.{n}.deciders.{i}", a) for n, g in enumerate(pf.gates)
              if not isinstance(g.deciders, str) for i, a in enumerate(g.deciders)]
    found += [(f"tasks.{n}.owner", t.owner) for n, t in enumerate(pf.tasks)]
    return [f"{field}: {address!r} is not an ASCII address; expected one the mailer can "
            "write (internationalised addresses, in their xn-- form too, are not supported)"
            for field, address in found if address is not None and not address.isascii()]


def load_playbook(path: Path) -> Playbook:
    """The playbook in the file at ``path``, resolved for an offboarding to carry: its
    templates by content and its hash. ``InputError`` lists every problem, one a line."""
    source = str(path)
    raw, text = _read(path)
    data = parse_document(text, source)
    refuse_alias_loops(data, source)
    written = load_model(PlaybookFile, data, source)
    problems = placement_problems(written) + address_problems(written)
    templates: dict[str, bytes] = {}
    if written.mail.templates is not None:
        templates, found = read_templates(path.parent, written.mail.templates)
        problems += found
        for name, body in templates.items():
            problems += template_problems(name, body, f"{written.mail.templates}/{name}.txt")
    if problems:
        raise InputError(f"{source} is not valid:\n" + "\n".join(f"  {p}" for p in problems))
    playbook = Playbook(
        name=written.name, sha256=fingerprint(raw, templates),
        off=[step for step in OPTIONAL_STEPS if written.steps.get(step) is False],
        gates=written.gates, tasks=written.tasks, sender_name=written.mail.sender_name,
        reply_to=written.mail.reply_to, timings=written.timings,
        templates={name: body.decode("utf-8") for name, body in sorted(templates.items())})
    size = len(playbook.model_dump_json().encode())
    if size > MAX_RESOLVED_BYTES:
        raise InputError(f"{source} resolves to {size} bytes with its templates; a playbook "
                         f"may be at most {MAX_RESOLVED_BYTES} (it travels in the workflow "
                         "input): shorten its templates or texts")
    return playbook
