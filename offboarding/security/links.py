"""Approval links: a token in the URL an approver is emailed, signed with Ed25519.

A token binds one offboarding (workflow id), one decision family (``settlement`` or
``data``), the document decided on (the statement's hash, the export manifest's
SHA-256), the approver's address and an expiry. It is signed by the worker's mailer with
a private key from settings, and checked with the public key alone: by the approvals
portal before it asks Temporal anything, and again by the workflow itself when the
decision arrives. The workflow learns the public keys from its own mail receipts, so the
history holds no secret, keys can rotate while offboardings run, and a person with write
access to the namespace cannot pass a typed decision off as one made through a link.

Format: ``o1.<key id>.<base64url claims JSON>.<base64url signature>``, the signature
over everything before its dot. Ed25519 verification takes the same time whatever the
token, so no comparison here leaks how much of a forgery was right.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import BaseModel, ConfigDict, ValidationError

from offboarding.models.messages import Family

VERSION = "o1"
MAX_TOKEN = 1024
"""Longer than any token we mint (about 400 characters); anything longer is refused unread."""
DEFAULT_VALIDITY = timedelta(days=14)


class BadLink(Exception):
    """The token is not one we issued, or no longer valid; the text says which."""


class LinkKeyError(Exception):
    """A link key is missing or malformed; the message names which, never the key."""


class LinkClaims(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    w: str
    """The workflow id."""
    f: Family
    d: str
    """The document: a statement's hash or an export manifest's SHA-256."""
    e: str
    """The approver's address: the ``by`` of the decision."""
    x: int
    """Expiry, seconds since the epoch (UTC)."""
    r: str | None = None
    """The run of the offboarding it was issued in; absent in links minted before runs
    were named. A later offboarding of the same client (same workflow id) is another run,
    and a link of the earlier one decides nothing in it."""

    @property
    def expires(self) -> datetime:
        return datetime.fromtimestamp(self.x, UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """One spelling per token: padding, or trailing bits that decode to the same bytes
    (a last character changed from ``A`` to ``B``), make another token for the same
    claims, and a token seen once must not be replayable under another name."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def parse(token: str, public_keys: Mapping[str, str], now: datetime) -> LinkClaims:
    """The token's claims if it is genuine and unexpired, else BadLink. Pure: the
    workflow calls it in its update validators."""
    if len(token) > MAX_TOKEN or not token.isascii():
        raise BadLink("the link is malformed")
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION:
        raise BadLink("the link is malformed")
    _, kid, body, signature = parts
    public = public_keys.get(kid)
    if public is None:
        raise BadLink(f"the link was signed with a key we do not know ({kid[:20]!r})")
    try:
        key = Ed25519PublicKey.from_public_bytes(_unb64(public))
        key.verify(_unb64(signature), f"{VERSION}.{kid}.{body}".encode())
        claims = LinkClaims.model_validate(json.loads(_unb64(body)))
    except (InvalidSignature, ValueError, binascii.Error, ValidationError):
        raise BadLink("the link's signature does not match: it was altered or not issued "
                      "by us") from None
    if now >= claims.expires:
        raise BadLink(f"the link expired on {claims.expires:%Y-%m-%d %H:%M} UTC")
    return claims


@dataclass(frozen=True)
class LinkKeys:
    """The signing keys by id and which one signs new links. Old keys stay listed (for
    checking) as long as links signed with them may still be opened: their validity."""

    private: Mapping[str, Ed25519PrivateKey]
    active: str

    def public(self) -> dict[str, str]:
        return {kid: _b64(key.public_key().public_bytes_raw())
                for kid, key in self.private.items()}

    def active_public(self) -> dict[str, str]:
        return {self.active: self.public()[self.active]}

    def mint(self, workflow_id: str, family: Family, document: str, email: str,
             now: datetime, valid_for: timedelta = DEFAULT_VALIDITY, *,
             run_id: str | None = None) -> str:
        claims = LinkClaims(w=workflow_id, f=family, d=document, e=email,
                            x=int((now + valid_for).timestamp()), r=run_id)
        body = _b64(json.dumps(claims.model_dump(exclude_none=True),
                               separators=(",", ":")).encode())
        signed = f"{VERSION}.{self.active}.{body}"
        return f"{signed}.{_b64(self.private[self.active].sign(signed.encode()))}"


def load_link_keys(path: Path | None, env_json: str | None,
                   active: str | None) -> LinkKeys | None:
    """Keys from a file ``{"active": "l1", "keys": {"l1": "<base64 32-byte seed>"}}`` or
    the same ``keys`` object from the environment; None when neither is set (mail then
    tells approvers to answer through ops, as before links)."""
    if path is not None:
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise LinkKeyError(f"link key file {path} cannot be read: "
                               f"{type(err).__name__}") from None
        raw, active = doc.get("keys", {}), active or doc.get("active")
    elif env_json:
        try:
            raw = json.loads(env_json)
        except ValueError:
            raise LinkKeyError("OFFBOARDING_LINK_KEYS is not a JSON object") from None
    else:
        return None
    if not isinstance(raw, dict) or not raw:
        raise LinkKeyError("no link keys: expected {\"<key id>\": \"<base64 of 32 bytes>\"}")
    keys: dict[str, Ed25519PrivateKey] = {}
    for kid, b64 in raw.items():
        if not kid.isascii() or not kid.isalnum():
            raise LinkKeyError(f"link key id {kid[:20]!r} must be letters and digits")
        try:
            seed = base64.b64decode(b64, validate=True)
        except (binascii.Error, TypeError):
            raise LinkKeyError(f"link key {kid!r} is not base64") from None
        if len(seed) != 32:
            raise LinkKeyError(f"link key {kid!r} must be 32 bytes, got {len(seed)}")
        keys[kid] = Ed25519PrivateKey.from_private_bytes(seed)
    chosen = active or (next(iter(keys)) if len(keys) == 1 else None)
    if chosen not in keys:
        raise LinkKeyError(f"the active link key {chosen!r} is not among the keys "
                           f"({', '.join(sorted(keys))})")
    return LinkKeys(keys, chosen)


def new_key_file(path: Path, kid: str = "l1") -> None:
    """A fresh key file, readable by its owner only (make run and the tests)."""
    seed = Ed25519PrivateKey.generate().private_bytes_raw()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"active": kid,
                                "keys": {kid: base64.b64encode(seed).decode()}}))
