"""A playbook's own email templates: read from the folder its ``mail.templates`` names
and checked as the mailer will use them (``activities/email.override_environment``),
against a sample of what each message is given (``samples.py``).

Only the folder next to the playbook is read: an absolute path, ``..`` or a link leading
out of it is refused, as is any file that is not a packaged ``NAME.txt`` (a misspelt
name would otherwise silently replace nothing).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from jinja2 import meta
from jinja2.exceptions import TemplateSyntaxError

from offboarding.activities.bounded_render import TooCostly, override_environment, render_all
from offboarding.activities.email import LINK_STAND_IN, NOT_OVERRIDABLE, TEMPLATES
from offboarding.models.playbook import MAX_TEMPLATE_BYTES, MAX_TEMPLATES
from offboarding.models.text import unprintable
from offboarding.playbooks.samples import sample_contexts

FIELD = "mail.templates"


def replaceable() -> list[str]:
    """The packaged templates a playbook may replace, by name (without ``.txt``)."""
    return sorted(p.stem for p in TEMPLATES.glob("*.txt"))


def _folder(base: Path, written: str) -> tuple[Path | None, list[str]]:
    """The templates folder, or None and why it cannot be used."""
    shown = f"{FIELD}: {written!r}"
    path = PurePosixPath(written)
    if path.is_absolute() or PureWindowsPath(written).is_absolute():
        return None, [f"{shown} is an absolute path; expected a folder relative to the "
                      "playbook file, e.g. templates"]
    if ".." in path.parts or "\\" in written:
        return None, [f"{shown} leaves the playbook's folder ('..' or '\\'); expected a "
                      "folder beside the playbook file or below it, written with '/'"]
    root = base.resolve()
    folder = (base / path).resolve()
    if not folder.is_relative_to(root):
        return None, [f"{shown} is a link leading out of the playbook's folder ({folder}); "
                      "expected the templates themselves beside the playbook"]
    if not folder.is_dir():
        return None, [f"{shown} is not a folder (looked for {base / path}); expected a "
                      "folder of NAME.txt files beside the playbook"]
    return folder, []


def read_templates(base: Path, written: str) -> tuple[dict[str, bytes], list[str]]:
    """The templates in the folder ``written`` (relative to ``base``, the playbook's
    folder), by name without ``.txt``; and one line per problem."""
    folder, problems = _folder(base, written)
    if folder is None:
        return {}, problems
    entries = sorted(folder.iterdir())
    if len(entries) > MAX_TEMPLATES:
        return {}, [f"{FIELD}: {written!r} holds {len(entries)} files; a playbook may replace "
                    f"at most {MAX_TEMPLATES} templates"]
    names, found = replaceable(), {}
    for entry in entries:
        where = f"{FIELD}: {written}/{entry.name}"
        if entry.is_symlink() and not entry.resolve().is_relative_to(folder):
            problems.append(f"{where} is a link leading out of the folder; expected the "
                            "template itself")
        elif entry.name in NOT_OVERRIDABLE:
            problems.append(f"{where} cannot be replaced: the HTML layout and the closure "
                            "report are the same under every playbook; expected NAME.txt")
        elif entry.suffix != ".txt" or entry.stem not in names:
            problems.append(f"{where} is not a template a playbook can replace; expected "
                            f"NAME.txt with NAME one of: {', '.join(names)}")
        elif not entry.is_file():
            problems.append(f"{where} is not a file")
        elif (size := entry.stat().st_size) > MAX_TEMPLATE_BYTES:
            problems.append(f"{where} is {size} bytes; a template may be at most "
                            f"{MAX_TEMPLATE_BYTES}")
        else:
            found[entry.stem] = entry.read_bytes()
    return found, problems


def template_problems(name: str, data: bytes, shown: str) -> list[str]:
    """Why the playbook's ``name`` template cannot be used: one line, naming ``shown``
    (its path as written) and the variable or line at fault; empty when it renders with
    every situation the message is sent in and starts with a non-empty subject."""
    where = f"{FIELD}: {shown}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return [f"{where} is not UTF-8 text (byte {err.start})"]
    why = unprintable(text, allow="\r\n\t")
    if why:
        return [f"{where} {why}; expected printable text"]
    env = override_environment()
    try:
        parsed = env.parse(text)
    except TemplateSyntaxError as err:
        return [f"{where}: line {err.lineno}: {err.message}"]
    contexts = sample_contexts(name)
    has = sorted(set().union(*(context for _, context in contexts)))
    unknown = sorted(meta.find_undeclared_variables(parsed) - set(has) - set(env.globals))
    if unknown:
        return [f"{where} uses {', '.join(unknown)}, which the {name} message does not have; "
                f"expected one of: {', '.join(has)}"]
    linked = [{**c, "link_url": LINK_STAND_IN} for _, c in contexts if c.get("link_url")]
    try:  # in the mailer's bounded child: a runaway template stops it, not the CLI
        results = render_all(text, [c for _, c in contexts] + linked)
    except TooCostly as err:
        return [f"{where} is too costly to render: {err}; expected a message's text"]
    stand_ins = iter(results[len(contexts):])
    for (situation, context), result in zip(contexts, results, strict=False):
        if result.text is None:
            at = f" (line {result.line})" if result.line else ""
            if result.kind == "undefined":
                when = f" {situation}" if situation else ""
                return [f"{where}{at}: {result.message}{when}; the {name} message has: "
                        f"{', '.join(has)}"]
            if result.kind == "security":
                return [f"{where}{at}: the sandbox refuses it: {result.message}"]
            return [f"{where}{at} cannot be rendered: {result.error}"]
        first = result.text.partition("\n")[0]
        if not first.startswith("Subject: "):
            return [f"{where}: its first line renders as {first[:60]!r}; expected "
                    "'Subject: ' and the subject"]
        subject = first.removeprefix("Subject: ").strip()
        if not subject:
            return [f"{where} renders an empty subject ({first!r}); expected 'Subject: ' "
                    "followed by the subject"]
        if why := unprintable(subject):  # as the mailer checks every header
            return [f"{where}: its subject {why}, which a mail header cannot hold; expected "
                    "the subject on one line of printable text"]
        if context.get("link_url"):
            stand_in = next(stand_ins)
            if stand_in.text is None or first != stand_in.text.partition("\n")[0]:
                return [f"{where}: its subject carries the recipient's link, which the "
                        "offboarding's history records (the mailer refuses it); expected "
                        "the link in the body"]
    return []
