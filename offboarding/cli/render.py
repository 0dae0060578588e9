"""How the CLI shows things: rich tables for people, JSON for scripts (``--json``).

User text (names, reasons, who) is escaped everywhere: ``[/]`` in a cancel reason is rich
markup, and crashed every later ``status`` and ``watch``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, TextIO

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Column, Table
from rich.text import Text

from offboarding.models.playbook import Playbook
from offboarding.models.status import OffboardingStatus, Step
from offboarding.playbooks import Row


class Renderer:
    def __init__(self, out: TextIO, as_json: bool, *, lines: bool = False) -> None:
        self.out = out
        self.as_json = as_json
        self.lines = lines
        """``-o jsonl``: a list is one compact JSON object per line (for ``jq -c``, logs)."""
        self.console = Console(file=out, width=120, highlight=False)
        # Progress goes to stderr, so --json output on stdout stays parseable.
        self.progress = Console(stderr=True, highlight=False)

    def emit(self, model: BaseModel | list[Any] | dict[str, Any],
             human: Callable[[], object]) -> None:
        if self.as_json:
            data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
            if self.lines:
                for item in data if isinstance(data, list) else [data]:
                    self.out.write(json.dumps(item, default=str) + "\n")
            else:
                self.out.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            human()

    def line(self, text: str) -> None:
        self.out.write(text + "\n")

    def status(self, st: OffboardingStatus) -> None:
        c, e = self.console, escape
        flags = [f for f, on in (("SHORT NOTICE", st.short_notice), ("OVERDUE", st.overdue)) if on]
        c.print(f"[bold]{e(st.client_name)}[/bold] ({e(st.workflow_id)}), "
                f"{st.reason.replace('_', ' ')}, contract end {st.contract_end}"
                + (f"  [red]{' '.join(flags)}[/red]" if flags else ""))
        if st.playbook:
            c.print(f"playbook: {e(st.playbook)}")
        c.print(f"stage: {e(str(st.stage))}   waiting for: {e(st.waiting_for or 'nothing')}"
                + (f"   outcome: {st.outcome}" if st.outcome else "")
                + (f"   ENDED: {st.ended_as} (nobody can act on it)" if st.ended_as else ""))
        table = Table("step", "state", "when", "who", "detail")
        for s in st.steps:
            table.add_row(e(s.title), s.state, s.at.strftime("%Y-%m-%d %H:%M") if s.at else "",
                          e(s.by or ""), e(s.detail))
        c.print(table)
        tasks = Table("manual item", "done", "who", "note")
        for t in st.tasks:
            tasks.add_row(e(t.title), "yes" if t.done else "no", e(t.by or ""), e(t.note))
        c.print(tasks)
        if st.statements:
            cur = st.statements[-1]
            c.print(f"current statement: v{cur.version} {cur.short_hash}, balance "
                    f"{cur.currency} {cur.balance} owed by {cur.owed_by}")
        if st.data_packages:
            pkg = st.data_packages[-1]
            c.print(f"current data export: {e(pkg.location)} manifest {pkg.manifest_sha256}")
        for p in st.problems:
            if p.resolution is None:
                c.print(f"[red]NEEDS OPS[/red] problem {e(p.key)} ({e(p.step)}) since "
                        f"{p.since:%Y-%m-%d %H:%M}: {e(p.why)}")
        for prop in st.proposals:
            c.print(f"[yellow]awaiting a second ops person[/yellow] {e(prop.action)}: "
                    f"{e(prop.key)} (proposed by {e(prop.by)})")
        for i in st.ignored:
            c.print(f"[yellow]ignored[/yellow] {e(i.action)} by {e(i.by or '?')}: {e(i.why)}")

    def playbook(self, source: str, playbook: Playbook, paths: dict[str, list[Row]]) -> None:
        """``playbook show``: each path's steps in order, the playbook's gates and tasks in
        their places, and what it changes in the mail and the timings."""
        if self.as_json:
            self.emit({"file": source, "playbook": playbook.label, "sha256": playbook.sha256,
                       "off": playbook.off,
                       "paths": {k: [asdict(r) for r in rows] for k, rows in paths.items()},
                       "templates": sorted(playbook.templates),
                       "sender_name": playbook.sender_name, "reply_to": playbook.reply_to,
                       "timings": playbook.timings.model_dump(exclude_none=True)},
                      lambda: None)
            return
        self.line(f"{source}: {counted(playbook)}")
        if playbook.off:
            self.line("switched off: " + ", ".join(playbook.off))
        for name, rows in paths.items():
            self.line(f"\n{name}:")
            n = 0
            for r in rows:
                if r.kind in ("step", "wait"):
                    n += 1
                    title = f"{r.title} (switched off)" if r.off else r.title
                    self.line(f"  {n:>2}. {r.key:<22} {title}" + (f"; {r.detail}" if r.detail
                                                                  else ""))
                else:
                    lead = "      " + "  " * (r.depth - 1) + f"{r.kind} {r.key}"
                    self.line(f"{lead:<28} {r.title}: {r.detail}")
        self.line("")
        sender = (f'"{playbook.sender_name}" <the OFFBOARDING_MAIL_FROM address>'
                  if playbook.sender_name else "OFFBOARDING_MAIL_FROM as it is")
        self.line(f"mail from: {sender}; reply-to: {playbook.reply_to or 'the From address'}")
        self.line("templates replaced: " + (", ".join(sorted(playbook.templates)) or "none")
                  + " (the others as packaged)")
        timings = playbook.timings.model_dump(exclude_none=True)
        self.line("timings: " + (", ".join(f"{k} {v:g}" for k, v in timings.items())
                                 or "the built-in ones")
                  + " (defaults: OFFBOARDING_TIMINGS__* and a client file's own values win)")

    def narrate(self, st: OffboardingStatus, changed: list[Step]) -> None:
        """What ``watch`` prints each time steps change: one line (or JSON object) each."""
        if self.as_json:
            for s in changed:
                self.out.write(json.dumps({"workflow_id": st.workflow_id, "stage": st.stage,
                                           "waiting_for": st.waiting_for,
                                           **s.model_dump(mode="json")}) + "\n")
            self.out.flush()
            return
        for s in changed:
            if s.state != "pending":
                self.console.print(f"  {s.title:<34} {s.state:<9} {escape(s.detail)}")
        if st.outcome or st.ended_as:
            self.console.print(f"[bold]{st.outcome or st.ended_as}[/bold]: "
                               f"{len(st.emails)} emails sent")

    def rows(self, rows: list[dict[str, Any]]) -> None:
        """Nothing is wrapped: a workflow id is copied from here into the next command, and
        a long wait on one row (a playbook's gates) squeezed the 120 columns and broke
        every id across two lines. The table is as wide as its longest row needs (up to
        10,000 columns; past that a value ends in an ellipsis: ``--json`` has it whole)."""
        t = Table(*(Column(name, no_wrap=True) for name in (
            "workflow", "status", "reason", "stage", "waiting for", "flags", "age (days)")))
        for r in rows:
            flags = " ".join(f for f, on in (("OVERDUE", r["overdue"]),
                                             ("short-notice", r["short_notice"])) if on)
            t.add_row(*(_literal(str(r[k] or "")) for k in (
                "workflow_id", "status", "reason", "stage", "waiting_for")),
                flags, f"{r['age_days']}")
        wide = Measurement.get(self.console, self.console.options.update_width(10_000), t)
        Console(file=self.out, width=max(self.console.width, wide.maximum),
                highlight=False).print(t)
        self.line(f"{len(rows)} offboarding(s)")


def _literal(value: str) -> Text:
    """A value from visibility, where anyone with access to the namespace can write, shown
    as it is: rich Text, so ``[/]`` is not markup (which stopped ``list``), and what a
    terminal would act on or hide (escape sequences, line breaks, bidi controls) spelt out
    as ``\\x1b``, ``\\n``, ``\\u202e``."""
    return Text("".join(c if c.isprintable() else c.encode("unicode_escape").decode()
                        for c in value))


def counted(playbook: Playbook) -> str:
    """``name@hash12: N gates, M tasks, K templates``."""
    def n(count: int, what: str) -> str:
        return f"{count} {what}" + ("" if count == 1 else "s")
    return (f"{playbook.label}: {n(len(playbook.gates), 'gate')}, "
            f"{n(len(playbook.tasks), 'task')}, {n(len(playbook.templates), 'template')}")
