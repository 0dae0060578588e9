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
import types
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, Literal, NoReturn, TextIO, Union, get_args, get_origin

from pydantic.fields import FieldInfo
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from temporalio.client import Client

from offboarding.cli import playbook as playbooks
from offboarding.cli.connection import connect_for_cli
from offboarding.cli.failures import DEBUG_ENV, DEBUG_FLAG, debugging, report
from offboarding.cli.render import Renderer
from offboarding.client import COMMAND, OffboardingClient, Refused
from offboarding.config import load_settings
from offboarding.models.client_file import ClientFile
from offboarding.models.loading import InputError, load_client_file, load_model
from offboarding.models.messages import ACTIONS, LINK_FIELD, Action, Adjustment, Message
from offboarding.models.playbook import Playbook
from offboarding.models.stages import Stage, Wait
from offboarding.playbooks import apply_timings
from offboarding.temporal import register_search_attributes
from offboarding.tracing import flush as flush_tracing
from offboarding.tracing import setup as setup_tracing


class CliError(Refused):
    """A usage error: reported like every other refusal."""


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 1 like every other refusal, never 2 (or a traceback)."""

    def error(self, message: str) -> NoReturn:
        raise CliError(f"{self.prog}: {message}\n{self.format_usage().strip()}")


# ----- the verbs -------------------------------------------------------------------------

Verb = Callable[[OffboardingClient, Renderer, argparse.Namespace], Awaitable[int]]


async def _start(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    playbook: Playbook | None = args.chosen_playbook  # read before connecting (run_cli)
    if args.client_dir:
        return await _start_many(ops, out, args.client_dir, playbook)
    client, timings = apply_timings(playbook, load_client_file(args.client_file), ops.timings)
    wid = await ops.start(client, timings, playbook=playbook)
    if args.wait:
        result = await ops.result(wid)
        out.emit(result, lambda: out.line(result.summary))
    else:
        by = f" (playbook {playbook.label})" if playbook else ""
        out.emit({"workflow_id": wid, "playbook": playbook.label if playbook else None},
                 lambda: out.line(f"started {wid}{by}\nfollow it: {COMMAND} status {wid}"))
    return 0


async def _start_many(ops: OffboardingClient, out: Renderer, folder: Path,
                      playbook: Playbook | None) -> int:
    """Validate every file first (so a typo starts nothing), then start each."""
    files = sorted(p for p in folder.glob("*") if p.suffix in (".yaml", ".yml", ".json"))
    if not files:
        raise Refused(f"{folder} holds no .yaml or .json client files")
    problems: list[str] = []
    loaded: list[tuple[Path, ClientFile]] = []
    for path in files:
        try:
            loaded.append((path, load_client_file(path)))
        except InputError as err:
            problems.append(str(err))
    if problems:
        raise Refused(f"{len(problems)} of {len(files)} client files are not valid; "
                      "nothing was started:\n" + "\n".join(problems))
    results: list[dict[str, Any]] = []
    with Progress(TextColumn("starting"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=out.progress, transient=True) as bar:
        task = bar.add_task("start", total=len(loaded))
        for path, cf in loaded:
            try:
                client, timings = apply_timings(playbook, cf, ops.timings)
                wid = await ops.start(client, timings, playbook=playbook)
                results.append({"file": str(path), "workflow_id": wid, "started": True})
            except Refused as err:
                results.append({"file": str(path), "workflow_id": None, "started": False,
                                "error": str(err)})
            bar.advance(task)

    def report() -> None:
        for r in results:
            out.line(f"started {r['workflow_id']}  ({r['file']})" if r["started"]
                     else f"NOT started: {r['file']}: {r['error']}")
    out.emit(results, report)
    return 0 if all(r["started"] for r in results) else 1


async def _watch(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    await ops.follow(args.workflow_id, out.narrate, every=args.every)
    return 0


async def _status(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    st = await ops.status(args.workflow_id)
    out.emit(st, lambda: out.status(st))
    return 0


async def _list(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    with out.progress.status("listing offboardings...") as spinner:
        async for row in ops.list(args.stage, args.waiting_for, args.overdue, args.all):
            rows.append(row)
            if len(rows) % 100 == 0:
                spinner.update(f"listing offboardings... {len(rows)} so far")
    out.emit(rows, lambda: out.rows(rows))
    return 0


async def _setup(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    added = await register_search_attributes(ops.client, progress=out.progress.print)
    out.emit({"added": added}, lambda: out.line(f"search attributes ready ({len(added)} added)"))
    return 0


async def _act(ops: OffboardingClient, out: Renderer, args: argparse.Namespace) -> int:
    msg = _message_from_args(args.command, ACTIONS[args.command], args)
    ack = await ops.send(args.workflow_id, args.command, msg)
    out.emit(ack, lambda: out.line(f"accepted: {ack.detail} (stage {ack.stage})"))
    return 0


VERBS: dict[str, Verb] = {"start": _start, "watch": _watch, "status": _status, "list": _list,
                          "setup": _setup, **dict.fromkeys(ACTIONS, _act)}


# ----- arguments -------------------------------------------------------------------------

def _flag_options(info: FieldInfo) -> dict[str, Any]:
    """argparse options for one message field; pydantic validates the value itself."""
    annotation = info.annotation
    if get_origin(annotation) in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    options: dict[str, Any] = {"required": info.is_required(), "help": info.description}
    if get_origin(annotation) is Literal:
        options["choices"] = list(get_args(annotation))
    elif get_origin(annotation) is list:
        options.update(action="append", metavar="DESCRIPTION=AMOUNT", required=False)
    elif annotation is int:
        options["type"] = int
    elif annotation is date:
        options["type"] = date.fromisoformat
    return options


def _message_from_args(name: str, action: Action, args: argparse.Namespace) -> Message:
    fields: dict[str, Any] = {}
    for field in action.model.model_fields:
        value = getattr(args, field, None)
        if value is not None:
            fields[field] = value
    if fields.get("adjustments"):
        adjustments = []
        for item in fields["adjustments"]:
            desc, sep, amount = item.rpartition("=")
            if not sep:
                raise CliError(f"--adjust {item!r}: expected DESCRIPTION=AMOUNT, e.g. "
                               "'Waived late fee=-150.00'")
            adjustments.append(load_model(Adjustment, {"description": desc, "amount": amount},
                                          f"--adjust {item!r}"))
        fields["adjustments"] = adjustments
    return load_model(action.model, fields, name)


REPLAY_CHECK = "replay-check"

GLOBAL_FLAGS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    # Named as the `temporal` CLI names them, so ops type what they know.
    (("--address",), {"help": "Temporal address; overrides TEMPORAL_ADDRESS and the address "
                               "make run wrote (OFFBOARDING_TEMPORAL_ADDRESS)"}),
    (("-n", "--namespace"), {"help": "Temporal namespace; overrides TEMPORAL_NAMESPACE"}),
    (("--api-key",), {"help": "API key (Temporal Cloud); overrides TEMPORAL_API_KEY"}),
    (("--tls",), {"action": "store_true", "help": "connect with TLS"}),
    (("--tls-cert-path",), {"type": Path, "help": "client certificate (mTLS)"}),
    (("--tls-key-path",), {"type": Path, "help": "client private key (mTLS)"}),
    (("--tls-ca-path",), {"type": Path, "help": "server CA certificate"}),
    (("--tls-server-name",), {"help": "server name to verify the certificate against"}),
    (("--profile",), {"help": "profile in Temporal's config file (TEMPORAL_PROFILE)"}),
    (("--config-file",), {"help": "Temporal's TOML config file (TEMPORAL_CONFIG_FILE)"}),
    (("-o", "--output"), {"choices": ["text", "table", "json", "jsonl"],
                          "help": "text/table for people (the default), json, or jsonl "
                                  "(one object per line)"}),
    (("--json",), {"action": "store_true", "help": "the same as -o json"}),
    ((DEBUG_FLAG,), {"action": "store_true", "help": f"a failure's traceback (or {DEBUG_ENV}=1)"}),
]


def _global_flags(parser: argparse.ArgumentParser, *, hidden: bool) -> None:
    for names, options in GLOBAL_FLAGS:
        if hidden:
            options = {**options, "default": argparse.SUPPRESS, "help": argparse.SUPPRESS}
        parser.add_argument(*names, **options)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=COMMAND, description=__doc__,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    _global_flags(p, hidden=False)
    # The same flags after the verb (`status WID --json`); SUPPRESS keeps the global value
    # when a verb does not repeat them.
    common = _Parser(add_help=False)
    _global_flags(common, hidden=True)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def verb(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], **kwargs)

    s = verb("start", help="start an offboarding from a client file (or a folder)")
    source = s.add_mutually_exclusive_group(required=True)
    source.add_argument("--client-file", type=Path)
    source.add_argument("--client-dir", type=Path,
                        help="start one offboarding per *.yaml / *.json file in a folder")
    s.add_argument("--wait", action="store_true", help="wait for the result")
    s.add_argument("--playbook", metavar="FILE", help="the company's playbook (docs/"
                   "playbooks.md); 'none' for none; default: OFFBOARDING_PLAYBOOK")
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
    sub.add_parser(REPLAY_CHECK, add_help=False, help=(
        "before a deploy: replay the running offboardings' histories against this code "
        f"(`{COMMAND} {REPLAY_CHECK} --help`)"))
    ls.add_argument("--all", action="store_true", help="include closed ones")
    verb("setup", help="register the search attributes on the namespace")
    playbooks.add_arguments(sub, common)
    # One verb per human action, its flags from the message's fields.
    for name, action in ACTIONS.items():
        a = verb(name, help=action.help)
        a.add_argument("workflow_id")
        for field, info in action.model.model_fields.items():
            if field == LINK_FIELD:
                continue
            flag = action.flags.get(field, "--" + field.replace("_", "-"))
            options = {"metavar": flag[2:].upper().replace("-", "_"), **_flag_options(info)}
            if "choices" in options:
                del options["metavar"]
            a.add_argument(flag, dest=field, **options)
    return p


# ----- running ---------------------------------------------------------------------------

async def run_cli(argv: list[str], client: Client | None = None,
                  out: TextIO = sys.stdout) -> int:
    try:
        if argv[:1] == [REPLAY_CHECK]:
            # The one verb that loads the workflow code, so only it imports it.
            import offboarding.replay_check as replay_check
            return await replay_check.run(argv[1:])
        args = build_parser().parse_args(argv)
        output = "json" if args.json else (args.output or "text")
        if args.command == "validate":
            cf = load_client_file(args.client_file)
            if output in ("json", "jsonl"):
                out.write(json.dumps({"valid": True, "client": cf.model_dump(mode="json")}) + "\n")
            else:
                out.write(f"{args.client_file}: valid ({cf.client_id}, {cf.reason}, "
                          f"ends {cf.contract.end_date})\n")
            return 0
        if args.command == "playbook":  # reads a file: no settings, no Temporal
            return playbooks.run(args, Renderer(out, output in ("json", "jsonl")))
        settings = load_settings()
        if args.command == "start":  # checked before anything connects or starts
            args.chosen_playbook = playbooks.chosen(args.playbook, settings)
        setup_tracing("offboarding-cli")
        client = client or await connect_for_cli(args, settings)
        ops = OffboardingClient(client, settings.task_queue, timings=settings.timings,
                                second_ops=settings.require_second_ops,
                                known_systems=set(settings.scim_systems),
                                require_links=settings.require_links)
        renderer = Renderer(out, output in ("json", "jsonl"), lines=output == "jsonl")
        return await VERBS[args.command](ops, renderer, args)
    except Exception as err:  # whatever it is, one line for a person (cli/failures.py)
        return report(err, debug=debugging(argv))


def main() -> NoReturn:
    """Exit with os._exit once the output is flushed: a short-lived process holding a
    Temporal client aborted at interpreter shutdown about once in 20-100 runs (``Fatal
    Python error: PyGILState_Release``, exit 134), after successes and refusals alike,
    as the SDK's runtime threads met a finalising interpreter."""
    try:
        code = asyncio.run(run_cli(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C: the shell's convention, without a traceback
        code = 130
    flush_tracing()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
