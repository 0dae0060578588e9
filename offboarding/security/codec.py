"""AES-256-GCM payload codec.

Every payload the SDK sends to Temporal (workflow inputs and results, activity inputs and
results, signals, updates, queries, and failure messages) is encrypted before it leaves
the process; the key id travels in the payload's metadata so keys can be rotated: add a
new key, make it active, keep the old ones for as long as histories encrypted with them
exist. Keys come from a key file or the environment, never from code.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
UNDECODABLE = b"binary/undecodable"
"""The encoding the worker gives a payload it could not decode (see ForgivingCodec)."""
UNDECODABLE_REASON = "undecodable-reason"


class CodecKeyError(Exception):
    """A key is missing or malformed; the message names which, never the key itself."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        for key_id, key in keys.items():
            if len(key) != 32:
                raise CodecKeyError(f"key {key_id!r} must be 32 bytes (AES-256), got {len(key)}")
        if active not in keys:
            raise CodecKeyError(f"the active key {active!r} is not among the keys "
                            f"({', '.join(sorted(keys)) or 'none'})")
        self._ciphers = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self.active = active
        self._token = hmac.new(keys[active], b"offboarding codec server token",
                               hashlib.sha256).hexdigest()

    def server_token(self) -> str:
        """The codec server's token, derived from the active key: whoever holds the key
        file can compute it (make run gives it to the UI), nobody else can guess it, and
        it changes when the key rotates."""
        return self._token

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher = self._ciphers[self.active]
        out = []
        for p in payloads:
            nonce = os.urandom(12)
            out.append(Payload(
                metadata={"encoding": ENCODING, KEY_ID: self.active.encode()},
                data=nonce + cipher.encrypt(nonce, p.SerializeToString(), None)))
        return out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                out.append(p)  # written before encryption was turned on
                continue
            key_id = p.metadata.get(KEY_ID, b"").decode(errors="replace")
            cipher = self._ciphers.get(key_id)
            if cipher is None:
                raise CodecKeyError(f"payload encrypted with unknown key {key_id[:40]!r}")
            try:
                out.append(Payload.FromString(cipher.decrypt(p.data[:12], p.data[12:], None)))
            except (InvalidTag, DecodeError, ValueError):
                raise CodecKeyError(f"payload marked as encrypted with key {key_id[:40]!r} does "
                                    "not decrypt with it (corrupted or forged)") from None
        return out


class ForgivingCodec(PayloadCodec):
    """The worker's codec: a payload it cannot decode becomes an empty one marked
    ``binary/undecodable`` with the reason, instead of an error.

    The worker decodes every payload of a workflow activation before the workflow sees
    any. One signal whose payload would not decrypt (forged, or sent by an operator whose
    CLI held a rotated-out key) failed every workflow task from then on, and since the
    signal stays in the history, restarts could not help. Marked
    instead, the signal handler records it as ignored, an update carrying one is rejected
    by the SDK, and anything else still fails loudly in the payload converter
    ("unknown payload encoding") rather than silently.
    """

    def __init__(self, inner: PayloadCodec) -> None:
        self.inner = inner

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return await self.inner.encode(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        try:  # the usual case: one call for the whole list
            return await self.inner.decode(payloads)
        except Exception:  # find which payloads fail, and mark only those
            pass
        out: list[Payload] = []
        for p in payloads:
            try:
                out += await self.inner.decode([p])
            except Exception as err:  # whatever the payload holds, the task must go on
                why = str(err) if isinstance(err, CodecKeyError) else type(err).__name__
                out.append(Payload(metadata={"encoding": UNDECODABLE,
                                             UNDECODABLE_REASON: why.encode()[:500]}))
        return out


def load_keys(key_file: Path | None, keys_json: str | None,
              active: str | None) -> EncryptionCodec | None:
    """From a JSON key file ``{"active": "k2", "keys": {"k1": "<base64>", "k2": ...}}``, or
    from OFFBOARDING_CODEC_KEYS (the ``keys`` object) and OFFBOARDING_CODEC_ACTIVE_KEY."""
    if key_file is None and not keys_json:
        return None
    try:
        if key_file is not None:
            doc = json.loads(key_file.read_text())
            raw, active = doc["keys"], active or doc["active"]
        else:
            raw = json.loads(keys_json or "{}")
        keys = {k: base64.b64decode(v, validate=True) for k, v in raw.items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        where = str(key_file) if key_file else "OFFBOARDING_CODEC_KEYS"
        raise CodecKeyError(f"cannot read the encryption keys from {where}: "
                        f"{type(err).__name__}") from None
    if not active:
        raise CodecKeyError("OFFBOARDING_CODEC_ACTIVE_KEY names no key")
    return EncryptionCodec(keys, active)


def new_key_file(path: Path, key_id: str = "k1") -> None:
    """A fresh key file, readable by its owner only (for `make run` and first setups)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"active": key_id, "keys": {key_id: base64.b64encode(os.urandom(32)).decode()}}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(doc, f, indent=2)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """The pydantic converter, with the codec and encoded failure messages when given."""
    if codec is None:
        return pydantic_data_converter
    return dataclasses.replace(
        pydantic_data_converter, payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
