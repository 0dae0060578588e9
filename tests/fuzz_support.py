"""What the message fuzzer sends (tests/integration/test_message_fuzz.py): Hypothesis
strategies for a message's name, its 0 to 3 arguments and its channel, and how each drawn
argument becomes the raw payload that goes on the wire.

Drawn values are symbolic (``$hash``, ``long:100000``, a link *kind*), so that a failing
example prints short and shrinks well; ``Context`` resolves them against the target
offboarding's status just before sending. Each built argument says whether the workflow
must refuse it (``Built.refuse_signal`` / ``refuse_update``), decided here with the same
models the worker uses, never by asking the worker.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload

from offboarding.models.messages import ACTIONS, ApproverDecision, Family
from offboarding.models.status import OffboardingStatus
from offboarding.security.codec import ENCODING, KEY_ID, EncryptionCodec
from offboarding.security.links import LinkKeys

ACTION_NAMES = list(ACTIONS)
UNKNOWN_NAMES = ["approve-everything", "Approve-Settlement", "approve_settlement", "cancel ",
                 "cancel\u202e", "\u0441ancel", "x" * 300, "", "status", "__stack_trace",
                 "__temporal_workflow_metadata"]
"""Names no action has: case, separator, trailing space, bidi, a Cyrillic homoglyph, a
long one, none at all, the query's name and the SDK's reserved ones."""

# ----- the drawn, symbolic example -------------------------------------------------------

Value = Any
Fields = tuple[tuple[str, Value], ...]
"""A message's fields in order, values possibly symbolic (``$finance``, ``$hash``...)."""

LinkKind = Literal["genuine", "no-run", "altered", "expired", "foreign-run",
                   "non-canonical-pad", "non-canonical-bits", "unknown-key", "foreign-key",
                   "other-offboarding", "wrong-family", "stale-document", "row-1-forgery",
                   "too-long", "not-ascii"]
ACCEPTABLE_LINKS: frozenset[str] = frozenset({"genuine", "no-run"})
"""The kinds a workflow may accept in an update (whether it does depends on its state); a
link of any other kind must be refused. ``no-run``: minted without the run claim, as the
mailer did before links named their run."""

Replacement = Literal["int", "bool", "float", "object", "long", "null", "list", "deep-list",
                      "deep-object", "homoglyph", "control", "format", "bidi"]
CONTROL_CHARS = ["\x00", "\x07", "\x1b", "\r\n", "\x0b", "\x85", "\u2028", "\u2029", "\x7f"]
FORMAT_CHARS = ["\u200b", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\U000e0041"]
BIDI_CHARS = ["\u202e", "\u2066", "\u061c", "\u200f", "\u202a"]
HOMOGLYPHS = str.maketrans("aeopcxyiABEKMHOPCTX",
                           "\u0430\u0435\u043e\u0440\u0441\u0445\u0443\u0456"
                           "\u0410\u0412\u0415\u041a\u041c\u041d\u041e\u0420\u0421\u0422\u0425")
"""Latin letters to their Cyrillic lookalikes."""
LONG = 100_000
DEEP = 1000

LyingKind = Literal["encrypted-garbage", "unknown-key-garbage", "unknown-key-ciphertext",
                    "truncated-ciphertext", "encrypted-non-payload", "unknown-encoding",
                    "binary-null", "no-encoding", "json-not-json", "json-empty",
                    "protobuf-claim"]


@dataclass(frozen=True)
class Valid:
    """A well-formed message for ``name`` (whether it is accepted depends on the state)."""

    fields: Fields
    encrypted: bool = False


@dataclass(frozen=True)
class Mutated:
    """A well-formed message with one field replaced (or one unknown field added)."""

    fields: Fields
    field: str
    replacement: Replacement
    detail: str = ""
    """Which character, for control/format/bidi."""
    encrypted: bool = False


@dataclass(frozen=True)
class Lying:
    """A payload whose metadata lies about its data."""

    kind: LyingKind
    fields: Fields


Arg = Valid | Mutated | Lying
Channel = Literal["signal", "update"]


@dataclass(frozen=True)
class Example:
    target: str
    """Which running offboarding (a stage: see the test's TARGETS)."""
    channel: Channel
    name: str
    args: tuple[Arg, ...]


# ----- strategies --------------------------------------------------------------------------

PEOPLE = ["$finance", "$steward", "ops.alice", "ops.bob", "Dana Whitfield",
          "mallory@evil.example"]
_person = st.sampled_from(PEOPLE)
_text = st.sampled_from(["done", "Handover held with the client's team.", "n/a",
                         "Ünïcödé ok — ½ ✓", "line one\nline two"])


def _link(family: bool) -> st.SearchStrategy[Fields]:
    if not family:
        return st.just(())
    kinds: list[LinkKind] = ["genuine", "no-run", "altered", "expired", "foreign-run",
                             "non-canonical-pad", "non-canonical-bits", "unknown-key",
                             "foreign-key", "other-offboarding", "wrong-family",
                             "stale-document", "row-1-forgery", "too-long", "not-ascii"]
    return st.one_of(st.just(()), st.sampled_from(kinds).map(lambda k: (("link", f"@{k}"),)))


def _fields(name: str) -> st.SearchStrategy[Fields]:
    """Well-formed fields for each action, its values drawn from what the state makes
    acceptable and from what it does not."""
    by = _person.map(lambda p: (("by", p),))
    link = _link(name in ACTIONS and ACTIONS[name].family is not None)
    statement = st.sampled_from(["$hash", "$hash12", "$first-hash", "0" * 64])
    own: st.SearchStrategy[Fields]
    match name:
        case "approve-settlement":
            own = st.tuples(statement).map(lambda t: (("statement_hash", t[0]),))
        case "dispute-settlement":
            adjustments = st.sampled_from([[], [{"description": "Waived late fee",
                                                 "amount": "-150.00"}]])
            own = st.tuples(statement, _text, adjustments).map(
                lambda t: (("statement_hash", t[0]), ("reason", t[1]), ("adjustments", t[2])))
        case "verify-data":
            own = st.sampled_from(["$checksum", "f" * 64]).map(lambda c: (("checksum", c),))
        case "reject-data" | "cancel":
            own = _text.map(lambda r: (("reason", r),))
        case "complete-task":
            own = st.tuples(st.sampled_from(["terms-met", "handover-session-held",
                                             "no-such-task"]), _text).map(
                lambda t: (("task", t[0]), ("note", t[1])))
        case "meeting-held":
            own = _text.map(lambda n: (("notes", n),))
        case "record-feedback":
            own = st.tuples(st.sampled_from([None, 0, 9, 10]), st.sampled_from([None, 1, 5]),
                            _text).map(lambda t: (("nps", t[0]), ("csat", t[1]),
                                                  ("comment", t[2])))
        case "renew":
            own = _text.map(lambda n: (("note", n),))
        case "terminate-early":
            own = st.tuples(st.sampled_from(["Material breach", "Budget cut"]),
                            st.sampled_from([None, "$today+0", "$today+20", "$today+3000"])
                            ).map(lambda t: (("cause", t[0]), ("effective_date", t[1])))
        case "extend-notice":
            own = st.sampled_from(["$end+1", "$end+30", "$end-5", "$end+4000"]).map(
                lambda d: (("new_end_date", d),))
        case "fix-contact":
            own = st.tuples(st.sampled_from(["primary", "data_steward", "billing"]),
                            st.sampled_from(["new.contact@client.example", "$current-email"])
                            ).map(lambda t: (("role", t[0]), ("email", t[1])))
        case "retry-step":
            own = st.sampled_from(["$problem", "access-crm"]).map(lambda p: (("problem", p),))
        case "skip-step":
            own = st.tuples(st.sampled_from(["$problem", "access-crm"]), _text).map(
                lambda t: (("problem", t[0]), ("reason", t[1])))
        case _:  # an unknown name: some plausible message
            own = st.sampled_from([(("reason", "test"),), ()])
    return st.tuples(by, own, link).map(lambda t: t[0] + t[1] + t[2])


def _replacement() -> st.SearchStrategy[tuple[Replacement, str]]:
    simple: list[Replacement] = ["int", "bool", "float", "object", "long", "null", "list",
                                 "deep-list", "deep-object", "homoglyph"]
    return st.one_of(
        st.sampled_from(simple).map(lambda r: (r, "")),
        st.sampled_from(CONTROL_CHARS).map(lambda c: ("control", c)),
        st.sampled_from(FORMAT_CHARS).map(lambda c: ("format", c)),
        st.sampled_from(BIDI_CHARS).map(lambda c: ("bidi", c)))


def _arg(name: str) -> st.SearchStrategy[Arg]:
    fields = _fields(name if name in ACTIONS else "")

    def mutated(t: tuple[Fields, int, tuple[Replacement, str], bool]) -> Mutated:
        f, index, (replacement, detail), encrypted = t
        keys = [k for k, _ in f] + ["surprise"]  # "surprise": a field no message has
        return Mutated(f, keys[index % len(keys)], replacement, detail, encrypted)

    lying: list[LyingKind] = ["encrypted-garbage", "unknown-key-garbage",
                              "unknown-key-ciphertext", "truncated-ciphertext",
                              "encrypted-non-payload", "unknown-encoding", "binary-null",
                              "no-encoding", "json-not-json", "json-empty", "protobuf-claim"]
    kinds: dict[str, st.SearchStrategy[Arg]] = {
        "valid": st.builds(Valid, fields, st.booleans()),
        "mutated": st.tuples(fields, st.integers(0, 7), _replacement(), st.booleans()).map(
            mutated),
        "lying": st.builds(Lying, st.sampled_from(lying), fields),
    }
    # Valid twice as likely (one_of would not weigh a repeated branch): enough accepted
    # messages to move the targets on.
    return st.sampled_from(["valid", "mutated", "lying", "valid"]).flatmap(kinds.__getitem__)


@st.composite
def examples(draw: st.DrawFn, targets: list[str]) -> Example:
    target = draw(st.sampled_from(targets))
    channel: Channel = draw(st.sampled_from(["signal", "update"]))
    known = st.sampled_from(ACTION_NAMES)
    name = draw(st.one_of(known, st.sampled_from(UNKNOWN_NAMES), known))
    count = draw(st.sampled_from([1, 0, 1, 2, 1, 3]))
    args = tuple(draw(_arg(name)) for _ in range(count))
    return Example(target, channel, name, args)


# ----- building payloads -------------------------------------------------------------------

@dataclass
class Context:
    """What symbolic values resolve to for one target, now."""

    status: OffboardingStatus
    finance: str
    steward: str
    emails: dict[str, str]
    """The contacts' current addresses by role."""
    run_id: str
    link_keys: LinkKeys
    codec: EncryptionCodec
    now: datetime


@dataclass
class Built:
    payload: Payload
    refuse_signal: str | None
    """Why the workflow must refuse this argument as a signal's only one, or None (it may
    accept it, depending on its state)."""
    refuse_update: str | None


def _resolve(ctx: Context, value: Value) -> Value:
    if not isinstance(value, str) or not value.startswith("$"):
        return value
    st_ = ctx.status
    match value:
        case "$finance":
            return ctx.finance
        case "$steward":
            return ctx.steward
        case "$hash":
            return st_.statements[-1].hash if st_.statements else "a" * 64
        case "$hash12":
            return st_.statements[-1].hash[:12] if st_.statements else "a" * 12
        case "$first-hash":
            return st_.statements[0].hash if st_.statements else "b" * 64
        case "$checksum":
            return st_.data_packages[-1].manifest_sha256 if st_.data_packages else "c" * 64
        case "$problem":
            open_ = [p.key for p in st_.problems if p.resolution is None]
            return open_[0] if open_ else "purge"
        case "$current-email":
            return ctx.emails["primary"]
    base, sign, days = value[1:].partition("+") if "+" in value else value[1:].partition("-")
    start = st_.contract_end if base == "end" else ctx.now.date()
    delta = timedelta(days=int(days) * (1 if sign == "+" else -1))
    return (start + delta).isoformat()


def _resolved(ctx: Context, fields: Fields) -> dict[str, Value]:
    return {k: _resolve(ctx, v) for k, v in fields}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _document(ctx: Context, family: Family) -> str:
    st_ = ctx.status
    if family == "settlement":
        return st_.statements[-1].hash if st_.statements else "a" * 64
    return st_.data_packages[-1].manifest_sha256 if st_.data_packages else "c" * 64


def make_link(ctx: Context, kind: str, name: str, by: str) -> str:
    """A link of ``kind`` for ``name``'s decision family, issued to ``by``."""
    action = ACTIONS.get(name)
    family: Family = (action.family if action else None) or "settlement"
    wid, keys, now = ctx.status.workflow_id, ctx.link_keys, ctx.now
    doc = _document(ctx, family)

    def mint(**kw: Any) -> str:
        args: dict[str, Any] = {"workflow_id": wid, "family": family, "document": doc,
                                "email": by, "now": now, "run_id": ctx.run_id} | kw
        return keys.mint(args.pop("workflow_id"), args.pop("family"), args.pop("document"),
                         args.pop("email"), args.pop("now"), **args)

    genuine = mint()
    version, kid, body, signature = genuine.split(".")
    match kind:
        case "genuine":
            return genuine
        case "no-run":
            return mint(run_id=None)
        case "altered":  # a later expiry in the claims, under the original signature
            claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
            claims["x"] += 86_400 * 365
            body = _b64(json.dumps(claims, separators=(",", ":")).encode())
            return f"{version}.{kid}.{body}.{signature}"
        case "expired":
            return mint(now=now - timedelta(days=30), valid_for=timedelta(days=14))
        case "foreign-run":
            return mint(run_id=str(uuid.uuid4()))
        case "non-canonical-pad":
            return genuine + "=="
        case "non-canonical-bits":  # the last character's unused low bits set
            alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            twin = alphabet[alphabet.index(signature[-1]) ^ 1]  # 64 bytes: 4 spare bits
            return f"{version}.{kid}.{body}.{signature[:-1]}{twin}"
        case "unknown-key":
            return f"{version}.l9.{body}.{signature}"
        case "foreign-key":
            other = LinkKeys({kid: Ed25519PrivateKey.generate()}, kid)
            return other.mint(wid, family, doc, by, now, run_id=ctx.run_id)
        case "other-offboarding":
            return mint(workflow_id=wid + "-other")
        case "wrong-family":
            return mint(family="data" if family == "settlement" else "settlement")
        case "stale-document":
            return mint(document="0" * 64)
        case "row-1-forgery":
            return "o1.l1.eyJ3IjoieCJ9.AAAA"
        case "too-long":
            return genuine + "A" * 1100
        case "not-ascii":
            return genuine[:-1] + "é"
    raise AssertionError(f"unknown link kind {kind}")


def _replace(value: Value, replacement: Replacement, detail: str) -> tuple[Value, str | None]:
    """The replaced value, or (None, JSON text) when it must be spliced in as text (the
    1,000-deep structures: json.dumps would recurse as deep)."""
    text = value if isinstance(value, str) else json.dumps(value)
    match replacement:
        case "int":
            return 42, None
        case "bool":
            return True, None
        case "float":
            return 1.5, None
        case "object":
            return {"value": value}, None
        case "long":
            return (text + "x" * LONG)[:LONG], None
        case "null":
            return None, None
        case "list":
            return [value], None
        case "deep-list":
            return None, "[" * DEEP + json.dumps(value) + "]" * DEEP
        case "deep-object":
            return None, '{"a":' * DEEP + json.dumps(value) + "}" * DEEP
        case "homoglyph":
            return text.translate(HOMOGLYPHS), None
        case "control" | "format" | "bidi":
            middle = len(text) // 2
            return text[:middle] + detail + text[middle:], None
    raise AssertionError(replacement)


SPLICE = "\u0000splice\u0000"


def _message_json(ctx: Context, name: str, arg: Valid | Mutated | Lying) -> bytes:
    fields = _resolved(ctx, arg.fields)
    link = fields.get("link")
    if isinstance(link, str) and link.startswith("@"):
        fields["link"] = make_link(ctx, link[1:], name, str(fields.get("by", "")))
    splice = None
    if isinstance(arg, Mutated):
        value, splice = _replace(fields.get(arg.field, "value"), arg.replacement, arg.detail)
        fields[arg.field] = SPLICE if splice is not None else value
    text = json.dumps(fields, ensure_ascii=False)
    if splice is not None:
        text = text.replace(json.dumps(SPLICE), splice)
    return text.encode("utf-8", errors="surrogatepass")


def _refusal(name: str, data: bytes, channel: Channel, link_kind: str | None) -> str | None:
    """Why the worker must refuse this JSON as ``name``'s one argument on ``channel``,
    computed with the worker's own models and its payload converter's calls."""
    action = ACTIONS.get(name)
    if action is None:
        return "no such action"
    try:
        if channel == "update":
            msg = TypeAdapter(action.model).validate_json(data)
        else:
            msg = action.model.model_validate(TypeAdapter(dict).validate_json(data))
    except Exception as err:  # any error: the worker's converter fails too
        return f"invalid: {type(err).__name__}: {str(err)[:200]}"
    if (channel == "update" and isinstance(msg, ApproverDecision) and msg.link
            and link_kind is not None and link_kind not in ACCEPTABLE_LINKS):
        return f"a {link_kind} link"
    return None


def _link_kind(arg: Valid | Mutated | Lying) -> str | None:
    for key, value in arg.fields:
        if key == "link" and isinstance(value, str) and value.startswith("@"):
            if isinstance(arg, Mutated) and arg.field == "link":
                return "mutated"
            return value[1:]
    return None


def json_payload(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


async def build(ctx: Context, name: str, arg: Arg) -> Built:
    """The raw payload for one drawn argument, and whether it must be refused."""
    data = _message_json(ctx, name, arg)
    plain = json_payload(data)
    if isinstance(arg, Valid | Mutated):
        payload = (await ctx.codec.encode([plain]))[0] if arg.encrypted else plain
        kind = _link_kind(arg)
        return Built(payload, _refusal(name, data, "signal", kind),
                     _refusal(name, data, "update", kind))
    why = f"lying metadata: {arg.kind}"
    junk = bytes(range(256)) * 2
    active = ctx.codec.active.encode()
    ciphertext = (await ctx.codec.encode([plain]))[0]
    match arg.kind:
        case "encrypted-garbage":
            payload = Payload(metadata={"encoding": ENCODING, KEY_ID: active}, data=junk)
        case "unknown-key-garbage":
            payload = Payload(metadata={"encoding": ENCODING, KEY_ID: b"k9"}, data=junk)
        case "unknown-key-ciphertext":
            payload = Payload(metadata={"encoding": ENCODING, KEY_ID: b"k9"},
                              data=ciphertext.data)
        case "truncated-ciphertext":
            payload = Payload(metadata=dict(ciphertext.metadata), data=ciphertext.data[:20])
        case "encrypted-non-payload":  # decrypts, but to bytes that are no Payload
            encrypted = await ctx.codec.encode([Payload(metadata={"encoding": b"x" * 3},
                                                        data=b"\xff" * 64)])
            payload = encrypted[0]
        case "unknown-encoding":
            payload = Payload(metadata={"encoding": b"application/x-fuzz"}, data=data)
        case "binary-null":
            payload = Payload(metadata={"encoding": b"binary/null"}, data=data)
        case "no-encoding":
            payload = Payload(metadata={}, data=data)
        case "json-not-json":
            payload = json_payload(data[: len(data) // 2] + b"\xff\xfe")
        case "json-empty":
            payload = json_payload(b"")
        case "protobuf-claim":
            payload = Payload(metadata={"encoding": b"json/protobuf",
                                        "messageType": b"temporal.api.common.v1.Payload"},
                              data=data)
    return Built(payload, why, why)


def expected_refusal(example: Example, built: list[Built]) -> str | None:
    """Why the whole message must be refused, or None if the workflow may accept it."""
    if example.name not in ACTIONS:
        return "no such action"
    if len(built) != 1:
        return f"{len(built)} arguments"
    return built[0].refuse_signal if example.channel == "signal" else built[0].refuse_update


def today_utc() -> date:
    return datetime.now(UTC).date()
