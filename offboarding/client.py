"""Typed operations on offboardings: the one place that starts them, reads them and sends
them messages. The CLI, the demo, the benchmark and the tests use it; a web front end
would too. It renders nothing and parses no arguments; a refusal is ``Refused`` with
words a person can act on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    QueryRejectCondition,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from offboarding.models import search_attributes as sa
from offboarding.models.client_file import ClientFile
from offboarding.models.messages import Ack, Message
from offboarding.models.playbook import Playbook
from offboarding.models.stages import Stage, Wait
from offboarding.models.status import (
    OffboardingInput,
    OffboardingResult,
    OffboardingStatus,
    Step,
    Timings,
)

WORKFLOW_TYPE = "ClientOffboarding"
COMMAND = "offboarding"
"""The command people type (the console script; ``starter.py`` runs it from a checkout):
every message, alert and hint names it."""


class Refused(Exception):
    """Something the user can fix: printed without a traceback, exit code 1."""


def workflow_id_for(client_id: str) -> str:
    """Business-keyed: one offboarding per client at a time."""
    return f"offboarding-{client_id}"


QUERY_PATIENCE = timedelta(seconds=2)
"""How long a status query is waited for before it is asked again.

Now and then sdk-core (temporalio 1.35) answers a query that reached the worker's own
(sticky) queue only once the server sends it a second time, which the server does when
the worker's sticky-queue timeout (10 s) has passed: under load about one portal page in
a thousand hung that long. Asked again, the worker answers at once: with a first attempt
of 2 s, the longest of 37,670 queries took 2.0 s (bench/README.md). A query slower than
this for another reason (a long history replayed) costs one query more, not an error."""
SLOW = {RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED}
"""What the SDK raises when a call's own timeout passes ("Timeout expired")."""


async def _status(handle: WorkflowHandle[Any, Any],
                  reject_condition: QueryRejectCondition | None = None) -> OffboardingStatus:
    """The status query, asked a second time (with no timeout of its own) when its first
    attempt is not answered within ``QUERY_PATIENCE``."""
    try:
        first: OffboardingStatus = await handle.query(
            "status", result_type=OffboardingStatus, reject_condition=reject_condition,
            rpc_timeout=QUERY_PATIENCE)
        return first
    except RPCError as err:
        if err.status not in SLOW:
            raise
    again: OffboardingStatus = await handle.query(
        "status", result_type=OffboardingStatus, reject_condition=reject_condition)
    return again


class OffboardingClient:
    def __init__(self, client: Client, task_queue: str, *, timings: Timings | None = None,
                 second_ops: bool = True, known_systems: set[str] | None = None,
                 require_links: bool = False) -> None:
        self.client = client
        self.task_queue = task_queue
        self.timings = timings or Timings()
        self.second_ops = second_ops
        self.require_links = require_links
        self.known_systems = known_systems
        """The SCIM systems the workers know (their settings); None: not checked."""

    async def start(self, client_file: ClientFile, timings: Timings | None = None, *,
                    playbook: Playbook | None = None) -> str:
        """Start one offboarding; ``playbook`` (resolved and checked: ``playbooks``) travels
        in its input and is named by the OffboardingPlaybook search attribute. Its timings
        are the caller's to merge first (``playbooks.apply_timings``)."""
        wid = workflow_id_for(client_file.client_id)
        c = client_file.contract
        if self.known_systems is not None:
            unknown = [s.system for s in client_file.systems
                       if s.system not in self.known_systems]
            if unknown:
                known = ", ".join(sorted(self.known_systems)) or "none"
                raise Refused(f"{client_file.client_id}: systems {', '.join(unknown)} are not "
                              f"configured on the workers (OFFBOARDING_SCIM_SYSTEMS lists: "
                              f"{known}); nothing was started")
        try:
            await self.client.start_workflow(
                WORKFLOW_TYPE,
                OffboardingInput(client=client_file, timings=timings or self.timings,
                                 second_ops=self.second_ops,
                                 require_links=self.require_links, playbook=playbook),
                id=wid,
                task_queue=self.task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                search_attributes=_initial_attributes(client_file, playbook),
                static_summary=f"Offboarding {client_file.client_id} ({client_file.reason})",
                static_details=(
                    f"**Client:** {client_file.client_id}  \n**Reason:** {client_file.reason}  \n"
                    f"**Contract:** {c.reference}, ends {c.end_date}, notice {c.notice_days} days"
                    + (f"  \n**Playbook:** {playbook.label}" if playbook else "")
                ),
            )
        except WorkflowAlreadyStartedError:
            raise Refused(
                f"{client_file.client_id} is already being offboarded by workflow {wid}; "
                f"see: {COMMAND} status {wid}"
            ) from None
        except RPCError as err:
            if playbook is not None and sa.PLAYBOOK.name in err.message:
                raise Refused(f"the namespace has no {sa.PLAYBOOK.name} search attribute yet "
                              f"({err.message}); run: {COMMAND} setup") from None
            raise
        return wid

    async def result(self, wid: str) -> OffboardingResult:
        handle = self.client.get_workflow_handle(wid, result_type=OffboardingResult)
        result: OffboardingResult = await handle.result()
        return result

    async def status(self, wid: str) -> OffboardingStatus:
        handle = self.client.get_workflow_handle(wid)
        try:
            return await _status(handle, QueryRejectCondition.NOT_OPEN)
        except WorkflowQueryRejectedError as closed:
            # Closed: its last status, and, if it closed without an outcome of its own (an
            # operator's terminate, the server's history limit), how it was closed.
            st = await _status(handle)
            if st.outcome is None and closed.status is not None:
                st.ended_as = closed.status.name.lower()
            return st
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise Refused(_not_found(err, f"no offboarding with id {wid}")) from None
            raise
        except WorkflowQueryFailedError as err:  # e.g. "Blob data size exceeds limit"
            detail = (err.message.strip().splitlines() or ["no detail"])[0][:300]
            raise Refused(f"the status of {wid} could not be read: {detail}") from None

    async def follow(self, wid: str, on_change: Callable[[OffboardingStatus, list[Step]], Any],
                     every: float = 1.0) -> OffboardingStatus:
        """Poll the status until the offboarding ends, calling back with the changed steps."""
        seen: dict[str, tuple[str, str]] = {}
        while True:
            st = await self.status(wid)
            changed = [s for s in st.steps if seen.get(s.key) != (s.state, s.detail)]
            seen.update({s.key: (s.state, s.detail) for s in st.steps})
            if changed:
                result = on_change(st, changed)
                if asyncio.iscoroutine(result):
                    await result
            if st.outcome or st.ended_as:
                return st
            await asyncio.sleep(every)

    async def list(self, stage: str | None = None, waiting_for: str | None = None,
                   overdue: bool = False, include_closed: bool = False
                   ) -> AsyncIterator[dict[str, Any]]:
        """Offboardings from the visibility store, one row each (its search attributes)."""
        for value, known, flag in ((stage, [str(s) for s in Stage], "--stage"),
                                   (waiting_for, [str(w) for w in Wait], "--waiting-for")):
            if value is not None and value not in known:  # it goes into a query: exact only
                raise Refused(f"{flag} {value!r} is not one of: {', '.join(known)}")
        query = f'WorkflowType = "{WORKFLOW_TYPE}"'
        if not include_closed:
            query += ' AND ExecutionStatus = "Running"'
        if stage:
            query += f' AND {sa.STAGE.name} = "{stage}"'
        if waiting_for:
            query += f' AND {sa.WAITING_FOR.name} = "{waiting_for}"'
        if overdue:
            query += f" AND {sa.OVERDUE.name} = true"
        now = datetime.now(UTC)
        async for wf in self.client.list_workflows(query):
            yield _row(wf, now)

    async def send(self, wid: str, action: str, msg: Message) -> Ack:
        """A human action as a validated update: accepted (the Ack says what happened) or
        Refused with the workflow's own reason."""
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
            raise Refused(f"{action} rejected: {why}") from None
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise Refused(_not_found(err, f"no running offboarding with id {wid}")) from None
            raise


def _not_found(err: RPCError, usual: str) -> str:
    """What was not found: usually the offboarding, but it may be the namespace."""
    return f"Temporal: {err.message}" if "namespace" in err.message.lower() else usual


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
        "playbook": attrs.get(sa.PLAYBOOK),
        "started": wf.start_time.isoformat() if wf.start_time else None,
        "age_days": round(age.total_seconds() / 86400, 1) if age else None,
    }


def _initial_attributes(cf: ClientFile, playbook: Playbook | None) -> TypedSearchAttributes:
    """Set at start so a new offboarding is findable before its first workflow task. The
    playbook's only when there is one: starting without one needs no attribute that a
    namespace set up before playbooks lacks."""
    end = datetime.combine(cf.contract.end_date, time(0), tzinfo=UTC)
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(sa.CLIENT_ID, cf.client_id),
        SearchAttributePair(sa.REASON, cf.reason),
        SearchAttributePair(sa.STAGE, str(Stage.STARTING)),
        SearchAttributePair(sa.CONTRACT_END, end),
    ]
    if playbook is not None:
        pairs.append(SearchAttributePair(sa.PLAYBOOK, playbook.label))
    return TypedSearchAttributes(pairs)
