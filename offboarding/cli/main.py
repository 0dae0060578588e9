"""The ops CLI: start, steer and inspect offboardings.

Every human action is sent as a validated *update*, so you learn at once whether it was
accepted; the same actions can be sent as *signals* with ``temporal workflow signal`` or
from the Web UI (see the README). ``--json`` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, NoReturn, TextIO

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from offboarding.config import Settings, SettingsError, load_settings
from offboarding.models import search_attributes as sa
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import InputError, load_client_file, load_model
from offboarding.models.messages import MESSAGE_TYPES, Ack, Adjustment, Message
from offboarding.models.stages import Stage, Wait
from offboarding.models.status import (
    OffboardingInput,
    OffboardingResult,
    OffboardingStatus,
    Step,
    Timings,
)
from offboarding.security.codec import CodecKeyError
from offboarding.temporal import DEFAULT_ADDRESS, connect, register_search_attributes
from offboarding.workflows.offboarding import ClientOffboarding, workflow_id_for


class CliError(Exception):
    """A problem the user can fix; printed without a traceback, exit code 1."""


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other refusal, never 2 (or a traceback)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message}\n{self.format_usage().strip()}")


class Cli:
    def __init__(self, client: Client, task_queue: str, out: TextIO, as_json: bool) -> None:
        self.client = client
        self.task_queue = task_queue
        self.out = out
        self.as_json = as_json
        self.console = Console(file=out, width=120, highlight=False)
        # Progress goes to stderr, so --json output on stdout stays parseable.
        self.progress_console = Console(stderr=True, highlight=False)
        self.timings = Timings()
        self.second_ops = True
        self.known_systems: set[str] | None = None
        """The SCIM systems the workers know (their settings); None: not checked."""

    def emit(self, model: BaseModel | list[Any] | dict[str, Any],
             human: Callable[[], object]) -> None:
        if self.as_json:
            data = model.model_dump(mode="json") if isinstance(model, BaseModel) else model
            self.out.write(json.dumps(data, indent=2, default=str) + "\n")
        else:
            human()

    # ----- starting ----------------------------------------------------------------------

    async def start(self, client_file: ClientFile, timings: Timings | None = None) -> str:
        wid = workflow_id_for(client_file.client_id)
        c = client_file.contract
        if self.known_systems is not None:
            unknown = [s.system for s in client_file.systems
                       if s.system not in self.known_systems]
            if unknown:
                known = ", ".join(sorted(self.known_systems)) or "none"
                raise CliError(f"{client_file.client_id}: systems {', '.join(unknown)} are not "
                               f"configured on the workers (OFFBOARDING_SCIM_SYSTEMS lists: "
                               f"{known}); nothing was started")
        try:
            await self.client.start_workflow(
                ClientOffboarding.run,
                OffboardingInput(client=client_file, timings=timings or self.timings,
                                 second_ops=self.second_ops),
                id=wid,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=_initial_attributes(client_file),
                static_summary=f"Offboarding {client_file.client_id} ({client_file.reason})",
                static_details=(
                    f"**Client:** {client_file.client_id}  \n**Reason:** {client_file.reason}  \n"
                    f"**Contract:** {c.reference}, ends {c.end_date}, notice {c.notice_days} days"
                ),
            )
        except WorkflowAlreadyStartedError:
            raise CliError(
                f"{client_file.client_id} is already being offboarded by workflow {wid}; "
                f"see: python starter.py status {wid}"
            ) from None
        return wid

    # ----- reading -----------------------------------------------------------------------

    async def status(self, wid: str) -> OffboardingStatus:
        handle = self.client.get_workflow_handle(wid)
        try:
            return await handle.query(ClientOffboarding.status)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise CliError(f"no offboarding with id {wid}") from None
            raise

    def print_status(self, st: OffboardingStatus) -> None:
        """User text (names, reasons, who) is escaped: ``[/]`` in a cancel reason is rich
        markup, and crashed every later ``status`` and ``watch`` (issue 10, row 8)."""
        c, e = self.console, escape
        flags = [f for f, on in (("SHORT NOTICE", st.short_notice), ("OVERDUE", st.overdue)) if on]
        c.print(f"[bold]{e(st.client_name)}[/bold] ({e(st.workflow_id)}), "
                f"{st.reason.replace('_', ' ')}, contract end {st.contract_end}"
                + (f"  [red]{' '.join(flags)}[/red]" if flags else ""))
        c.print(f"stage: {e(st.stage)}   waiting for: {e(st.waiting_for or 'nothing')}"
                + (f"   outcome: {st.outcome}" if st.outcome else ""))
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

    async def follow(self, wid: str, on_change: Callable[[OffboardingStatus, list[Step]], Any],
                     every: float = 1.0) -> OffboardingStatus:
        """Poll the status until the offboarding ends, calling back with the changed steps."""
        seen: dict[str, tuple[str, str]] = {}
        while True:
            st = await self.status(wid)
            changed = [s for s in st.steps if seen.get(s.key) != (s.state, s.detail)]
            seen.update({s.key: (s.state, s.detail) for s in st.steps})
            if changed:
                await _maybe_await(on_change(st, changed))
            if st.outcome:
                return st
            await asyncio.sleep(every)

    def narrate(self, st: OffboardingStatus, changed: list[Step]) -> None:
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
        if st.outcome:
            self.console.print(f"[bold]{st.outcome}[/bold]: {len(st.emails)} emails sent")

    async def start_many(self, files: list[Path]) -> list[dict[str, Any]]:
        """Validate every file first (so a typo starts nothing), then start each."""
        problems: list[str] = []
        loaded: list[tuple[Path, ClientFile]] = []
        for path in files:
            try:
                loaded.append((path, load_client_file(path)))
            except InputError as err:
                problems.append(str(err))
        if problems:
            raise CliError(f"{len(problems)} of {len(files)} client files are not valid; "
                           "nothing was started:\n" + "\n".join(problems))
        results: list[dict[str, Any]] = []
        with Progress(TextColumn("starting"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=self.progress_console,
                      transient=True) as bar:
            task = bar.add_task("start", total=len(loaded))
            for path, cf in loaded:
                try:
                    wid = await self.start(cf)
                    results.append({"file": str(path), "workflow_id": wid, "started": True})
                except CliError as err:
                    results.append({"file": str(path), "workflow_id": None, "started": False,
                                    "error": str(err)})
                bar.advance(task)
        return results

    async def list(self, stage: str | None, waiting_for: str | None, overdue: bool,
                   include_closed: bool) -> list[dict[str, Any]]:
        for value, known, flag in ((stage, [str(s) for s in Stage], "--stage"),
                                   (waiting_for, [str(w) for w in Wait], "--waiting-for")):
            if value is not None and value not in known:  # it goes into a query: exact only
                raise CliError(f"{flag} {value!r} is not one of: {', '.join(known)}")
        query = 'WorkflowType = "ClientOffboarding"'
        if not include_closed:
            query += ' AND ExecutionStatus = "Running"'
        if stage:
            query += f' AND {sa.STAGE.name} = "{stage}"'
        if waiting_for:
            query += f' AND {sa.WAITING_FOR.name} = "{waiting_for}"'
        if overdue:
            query += f" AND {sa.OVERDUE.name} = true"
        rows: list[dict[str, Any]] = []
        now = datetime.now(UTC)
        with self.progress_console.status("listing offboardings...") as spinner:
            async for wf in self.client.list_workflows(query):
                rows.append(_row(wf, now))
                if len(rows) % 100 == 0:
                    spinner.update(f"listing offboardings... {len(rows)} so far")
        return rows

    # ----- acting ------------------------------------------------------------------------

    async def send(self, wid: str, action: str, msg: Message) -> Ack:
        handle: WorkflowHandle[Any, Any] = self.client.get_workflow_handle(wid)
        try:
            for attempt in range(6):
                try:
                    ack: Ack = await handle.execute_update(action, msg, result_type=Ack)
                    return ack
                except RPCError as err:
                    # The workflow task that carried the update raced with another event
                    # and is being retried by the server: transient, so try again.
                    if not _workflow_not_ready(err) or attempt == 5:
                        raise
                    await asyncio.sleep(0.2 * 2**attempt)
            raise AssertionError("unreachable")
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            why = getattr(cause, "message", None) or str(cause)
            raise CliError(f"{action} rejected: {why}") from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise CliError(f"no running offboarding with id {wid}") from None
            raise


def _workflow_not_ready(err: RPCError) -> bool:
    return err.status == RPCStatusCode.FAILED_PRECONDITION and \
        b"WorkflowNotReadyFailure" in (err.raw_grpc_status or b"")


def _row(wf: WorkflowExecution, now: datetime) -> dict[str, Any]:
    attrs = wf.typed_search_attributes
    age = now - wf.start_time if wf.start_time else None
    return {
        "workflow_id": wf.id,
        "status": wf.status.name if wf.status else "?",
        "client_id": attrs.get(sa.CLIENT_ID),
        "reason": attrs.get(sa.REASON),
        "stage": attrs.get(sa.STAGE),
        "waiting_for": ",".join(attrs.get(sa.WAITING_FOR) or []) or None,
        "overdue": bool(attrs.get(sa.OVERDUE)),
        "short_notice": bool(attrs.get(sa.SHORT_NOTICE)),
        "started": wf.start_time.isoformat() if wf.start_time else None,
        "age_days": round(age.total_seconds() / 86400, 1) if age else None,
    }


async def _maybe_await(value: Any) -> None:
    if asyncio.iscoroutine(value):
        await value


def _initial_attributes(cf: ClientFile) -> TypedSearchAttributes:
    """Set at start so a new offboarding is findable before its first workflow task."""
    end = datetime.combine(cf.contract.end_date, time(0), tzinfo=UTC)
    return TypedSearchAttributes([
        SearchAttributePair(sa.CLIENT_ID, cf.client_id),
        SearchAttributePair(sa.REASON, cf.reason),
        SearchAttributePair(sa.STAGE, "starting"),
        SearchAttributePair(sa.CONTRACT_END, end),
    ])


# ----- argument parsing ------------------------------------------------------------------

def _message_from_args(action: str, args: argparse.Namespace) -> Message:
    fields: dict[str, Any] = {"by": args.by}
    for name in ("statement", "reason", "checksum", "task", "note", "notes", "nps", "csat",
                 "comment", "internal_note", "cause", "effective_date", "new_end_date",
                 "role", "email", "problem"):
        value = getattr(args, name, None)
        if value is not None:
            fields["statement_hash" if name == "statement" else name] = value
    if getattr(args, "adjust", None):
        adjustments = []
        for item in args.adjust:
            desc, sep, amount = item.rpartition("=")
            if not sep:
                raise CliError(f"--adjust {item!r}: expected DESCRIPTION=AMOUNT, e.g. "
                               "'Waived late fee=-150.00'")
            adjustments.append(load_model(Adjustment, {"description": desc, "amount": amount},
                                          f"--adjust {item!r}"))
        fields["adjustments"] = adjustments
    return load_model(MESSAGE_TYPES[action], fields, action)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="starter.py", description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--address", help="Temporal address; overrides TEMPORAL_ADDRESS and the "
                   "address make run wrote (OFFBOARDING_TEMPORAL_ADDRESS)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    # The same flags after the verb (`status WID --json`); SUPPRESS keeps the global value
    # when a verb does not repeat them.
    common = _Parser(add_help=False)
    common.add_argument("--address", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    s = verb("start", help="start an offboarding from a client file (or a folder)")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--client-file", type=Path)
    source.add_argument("--client-dir", type=Path,
                        help="start one offboarding per *.yaml / *.json file in a folder")
    s.add_argument("--wait", action="store_true", help="wait for the result")
    w = verb("watch", help="follow one offboarding live until it ends")
    w.add_argument("workflow_id")
    w.add_argument("--every", type=float, default=1.0, help="seconds between looks")
    v = verb("validate", help="check a client file without starting anything")
    v.add_argument("client_file", type=Path)
    st = verb("status", help="the checklist of one offboarding")
    st.add_argument("workflow_id")
    ls = verb("list", help="offboardings with their stage")
    stages, waits = [str(s) for s in Stage], [str(w) for w in Wait]
    ls.add_argument("--stage", choices=stages, metavar="STAGE", help="one of: " + ", ".join(stages))
    ls.add_argument("--waiting-for", choices=waits, metavar="WAIT",
                    help="one of: " + ", ".join(waits))
    ls.add_argument("--overdue", action="store_true")
    ls.add_argument("--all", action="store_true", help="include closed ones")
    verb("setup", help="register the search attributes on the namespace")

    def action(name: str, helptext: str) -> argparse.ArgumentParser:
        a = verb(name, help=helptext)
        a.add_argument("workflow_id")
        a.add_argument("--by", required=True, help="who acts (approvers: their email)")
        return a

    a = action("approve-settlement", "finance: approve the current statement")
    a.add_argument("--statement", required=True, help="the statement hash (12+ hex digits)")
    a = action("dispute-settlement", "finance: dispute it, with adjustments")
    a.add_argument("--statement", required=True)
    a.add_argument("--reason", required=True)
    a.add_argument("--adjust", action="append", metavar="DESCRIPTION=AMOUNT")
    a = action("verify-data", "data steward: confirm the manifest checksum")
    a.add_argument("--checksum", required=True)
    a = action("reject-data", "data steward: reject the export (it is redone)")
    a.add_argument("--reason", required=True)
    a = action("complete-task", "ops: tick a manual checklist item")
    a.add_argument("--task", required=True)
    a.add_argument("--note")
    a = action("meeting-held", "ops: record the final review meeting")
    a.add_argument("--notes")
    a = action("record-feedback", "ops: record the client's NPS / CSAT")
    a.add_argument("--nps", type=int)
    a.add_argument("--csat", type=int)
    a.add_argument("--comment")
    a.add_argument("--internal-note")
    a = action("renew", "ops: the client renewed; end the offboarding")
    a.add_argument("--note")
    a = action("terminate-early", "ops: switch to the termination path")
    a.add_argument("--cause", required=True)
    a.add_argument("--effective-date", type=date.fromisoformat)
    a = action("extend-notice", "ops: move the contract end date later")
    a.add_argument("--new-end-date", type=date.fromisoformat, required=True)
    a = action("cancel", "ops: stop the offboarding, with a reason")
    a.add_argument("--reason", required=True)
    a = action("fix-contact", "ops: correct a contact's address; bounced mail is resent")
    a.add_argument("--role", required=True, choices=["primary", "data_steward", "billing"])
    a.add_argument("--email", required=True)
    a = action("retry-step", "ops: the cause of a problem is fixed; try its step again")
    a.add_argument("--problem", required=True, help="the problem's key, as status shows it")
    a = action("skip-step", "ops: give up on a problem's step, with a reason")
    a.add_argument("--problem", required=True)
    a.add_argument("--reason", required=True)
    return p


async def run_cli(argv: list[str], client: Client | None = None,
                  out: TextIO = sys.stdout) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "validate":
            cf = load_client_file(args.client_file)
            if args.json:
                out.write(json.dumps({"valid": True, "client": cf.model_dump(mode="json")}) + "\n")
            else:
                out.write(f"{args.client_file}: valid ({cf.client_id}, {cf.reason}, "
                          f"ends {cf.contract.end_date})\n")
            return 0
        settings = load_settings()
        client = client or await connect_for_cli(args.address, settings)
        cli = Cli(client, settings.task_queue, out, args.json)
        cli.timings = settings.timings
        cli.second_ops = settings.require_second_ops
        cli.known_systems = set(settings.scim_systems)
        return await _dispatch(cli, args)
    except (CliError, InputError, SettingsError, CodecKeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


async def connect_for_cli(flag: str | None, settings: Settings) -> Client:
    """The server: --address, else TEMPORAL_ADDRESS (and Temporal's other environment
    configuration), else the one `make run` wrote, else localhost:7233. A server that does
    not answer is named with where its address came from."""
    if flag:
        address, source = flag, "--address"
    elif os.environ.get("TEMPORAL_ADDRESS"):
        address, source = os.environ["TEMPORAL_ADDRESS"], "TEMPORAL_ADDRESS"
    elif settings.temporal_address:
        address, source = settings.temporal_address, "OFFBOARDING_TEMPORAL_ADDRESS"
    else:
        address, source = DEFAULT_ADDRESS, "the default"
    try:
        return await connect(address, settings.codec())
    except RuntimeError as err:
        raise CliError(f"cannot reach Temporal at {address} (from {source}): "
                       f"{str(err).splitlines()[0][:200]}") from None


async def _dispatch(cli: Cli, args: argparse.Namespace) -> int:
    cmd = args.command
    if cmd == "start" and args.client_dir:
        files = sorted(p for p in args.client_dir.glob("*")
                       if p.suffix in (".yaml", ".yml", ".json"))
        if not files:
            raise CliError(f"{args.client_dir} holds no .yaml or .json client files")
        results = await cli.start_many(files)

        def report() -> None:
            for r in results:
                cli.out.write(f"started {r['workflow_id']}  ({r['file']})\n" if r["started"]
                              else f"NOT started: {r['file']}: {r['error']}\n")
        cli.emit(results, report)
        return 0 if all(r["started"] for r in results) else 1
    if cmd == "watch":
        await cli.follow(args.workflow_id, cli.narrate, every=args.every)
        return 0
    if cmd == "start":
        cf = load_client_file(args.client_file)
        wid = await cli.start(cf)
        if args.wait:
            result = await cli.client.get_workflow_handle(
                wid, result_type=OffboardingResult).result()
            cli.emit(result, lambda: cli.out.write(result.summary + "\n"))
        else:
            cli.emit({"workflow_id": wid}, lambda: cli.out.write(
                f"started {wid}\nfollow it: python starter.py status {wid}\n"))
        return 0
    if cmd == "status":
        st = await cli.status(args.workflow_id)
        cli.emit(st, lambda: cli.print_status(st))
        return 0
    if cmd == "list":
        rows = await cli.list(args.stage, args.waiting_for, args.overdue, args.all)

        def table() -> None:
            t = Table("workflow", "status", "reason", "stage", "waiting for", "flags",
                      "age (days)")
            for r in rows:
                flags = " ".join(f for f, on in (("OVERDUE", r["overdue"]),
                                                 ("short-notice", r["short_notice"])) if on)
                t.add_row(r["workflow_id"], r["status"], r["reason"] or "", r["stage"] or "",
                          r["waiting_for"] or "", flags, f"{r['age_days']}")
            cli.console.print(t)
            cli.out.write(f"{len(rows)} offboarding(s)\n")
        cli.emit(rows, table)
        return 0
    if cmd == "setup":
        added = await register_search_attributes(cli.client)
        cli.emit({"added": added}, lambda: cli.out.write(
            f"search attributes ready ({len(added)} added)\n"))
        return 0
    msg = _message_from_args(cmd, args)
    ack = await cli.send(args.workflow_id, cmd, msg)
    cli.emit(ack, lambda: cli.out.write(f"accepted: {ack.detail} (stage {ack.stage})\n"))
    return 0


def main() -> NoReturn:
    """Exit with os._exit once the output is flushed: a short-lived process holding a
    Temporal client aborted at interpreter shutdown about once in 20-100 runs (``Fatal
    Python error: PyGILState_Release``, exit 134), after successes and refusals alike,
    as the SDK's runtime threads met a finalising interpreter (issue 10, row 12)."""
    code = asyncio.run(run_cli(sys.argv[1:]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
