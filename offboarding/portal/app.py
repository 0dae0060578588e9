"""The approvals portal: an ASGI app (Starlette) serving server-rendered pages that work
without JavaScript.

Every request starts from a signed link (security/links.py), checked with the public keys
alone before anything is asked of Temporal; a link that fails gets a plain 403 and no
call is made. A decision is the same validated update the CLI sends (through
``OffboardingClient``), carrying the link, so the workflow checks it again and records
``via: link``. No cookies (so no CSRF surface: the POST carries the link in the form),
and every answer is ``no-store``."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import jinja2
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Match, Route, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from offboarding.activities.data_transfer import export_key
from offboarding.activities.registry import bundle_store
from offboarding.activities.stores import BundleStore, sha256
from offboarding.client import OffboardingClient, Refused
from offboarding.config import Settings
from offboarding.models.gates import DATA
from offboarding.portal import forms
from offboarding.portal.documents import Subject, UnknownDocument, about
from offboarding.security.links import BadLink, LinkClaims, parse
from offboarding.security.web import bounded_body
from offboarding.tracing import span

TEMPLATES = Path(__file__).parent / "templates"
log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
FILES = {"data.zip": "application/zip", "manifest.json": "application/json"}
HEADERS = [
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
     b"frame-ancestors 'none'; base-uri 'none'"),
]


class Refusal(Exception):
    """A request the portal answers with a plain page: a status, a title and why."""

    def __init__(self, status: int, title: str, why: str) -> None:
        super().__init__(why)
        self.status, self.title, self.why = status, title, why


class Portal:
    def __init__(self, settings: Settings, store: BundleStore | None = None) -> None:
        keys = settings.links()
        self.public_keys = keys.public() if keys else {}
        self.task_queue = settings.task_queue
        self.link = settings.portal_link
        self.store = store or bundle_store(settings, "transfer")
        self.ops: OffboardingClient | None = None
        # Packaged: not stat()ed again for every page (jinja's auto_reload, ~2% of its CPU).
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                                      auto_reload=False, autoescape=True,
                                      undefined=jinja2.StrictUndefined)
        self.env.filters["money"] = lambda v, cur="": f"{cur} {Decimal(str(v)):,.2f}".strip()
        # Jinja's own capitalize lowers the rest, and a gate's title is the playbook's.
        self.env.filters["first_upper"] = lambda v: str(v)[:1].upper() + str(v)[1:]

    def use(self, client: Client) -> None:
        self.ops = OffboardingClient(client, self.task_queue)

    # ----- the three pages ------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        token = request.path_params["token"]
        claims = self._claims(request.path_params["wid"], token)
        subject = await self._subject(claims)
        return self._render("decide.html", 200, s=subject, token=token,
                            manifest=await self._manifest(subject),
                            done=request.query_params.get("done") == "1")

    async def decide(self, request: Request) -> Response:
        body = await bounded_body(request, forms.MAX_BODY)  # before anything is parsed
        try:
            form = forms.read_form(body)
        except forms.FormError as err:
            return self.message(err.status, "The form was not accepted", str(err))
        token = form["token"]
        wid = request.path_params["wid"]
        claims = self._claims(wid, token)
        subject = await self._subject(claims)  # which gates and tasks there are
        try:
            wanted = forms.decision(form, claims, token, subject.status)
        except forms.FormError as err:
            return self.message(err.status, "The form was not accepted", str(err))
        if not subject.open:  # decided, superseded or not awaited: the page says which
            return self._render("decide.html", 409, s=subject, token=token, done=False,
                                manifest=await self._manifest(subject))
        assert self.ops is not None
        try:
            with span("portal decide", {"offboarding.action": wanted.action,
                                        "temporalWorkflowID": wid}, SpanKind.SERVER):
                await self.ops.send(wid, wanted.action, wanted.message)
        except Refused as err:
            return self.message(409, "Your decision was not accepted", str(err))
        # Post/redirect/get: a reload shows the decision instead of sending it again.
        return RedirectResponse(self.link(wid, token) + "?done=1", status_code=303)

    async def download(self, request: Request) -> Response:
        name = request.path_params["name"]
        claims = self._claims(request.path_params["wid"], request.path_params["token"])
        if name not in FILES:
            raise Refusal(404, "Not found", "there is nothing of that name to download")
        if claims.f != DATA.id:
            raise Refusal(403, "This link cannot be used",
                          "this link is not for an export: it downloads nothing")
        subject = await self._subject(claims)
        if subject.status.outcome == "cancelled" or subject.status.ended_as:
            raise Refusal(410, "Deleted", "this offboarding was "
                          f"{subject.status.ended_as or 'cancelled'}; its exports are not "
                          "served any more")
        key, manifest = await self._stored_manifest(subject)
        if manifest is None:
            raise Refusal(410, "Deleted", "our copy of this export has been deleted")
        if sha256(manifest) != claims.d:  # what the steward was told must be what they get
            log.error("export %s of %s: the stored manifest does not match %s", key, claims.w,
                      claims.d)
            raise Refusal(500, "Package damaged", "the stored package does not match the "
                          "checksum you were sent; reply to the email and we will export it "
                          "again")
        digest = claims.d if name == "manifest.json" else json.loads(manifest)["package_sha256"]
        opened = await anyio.to_thread.run_sync(self.store.open, key, name)
        if opened is None:
            raise Refusal(410, "Deleted", "our copy of this export has been deleted")
        f, size = opened

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while data := await anyio.to_thread.run_sync(f.read, CHUNK):
                    yield data
            finally:
                f.close()

        b64 = base64.b64encode(bytes.fromhex(digest)).decode()
        return StreamingResponse(chunks(), media_type=FILES[name], headers={
            "content-length": str(size), "repr-digest": f"sha-256=:{b64}:",
            "x-checksum-sha256": digest,
            "content-disposition": f'attachment; filename="{name}"'})

    # ----- shared -----------------------------------------------------------------------

    async def _stored_manifest(self, subject: Subject) -> tuple[str, bytes | None]:
        """The export's key in the store and its manifest as stored (None once deleted)."""
        assert subject.package is not None
        key = export_key(subject.status.client_id, subject.status.records_key,
                         subject.package.attempt)
        return key, await anyio.to_thread.run_sync(self.store.read, key, "manifest.json")

    async def _manifest(self, subject: Subject) -> list[dict[str, Any]] | None:
        """The export's files as its manifest lists them (None once deleted or damaged)."""
        if subject.gate is not DATA:  # a playbook gate's page shows the export it binds
            return None
        assert subject.package is not None
        _, manifest = await self._stored_manifest(subject)
        if manifest is None or sha256(manifest) != subject.claims.d:
            return None
        files: list[dict[str, Any]] = json.loads(manifest)["files"]
        return files

    def _claims(self, wid: str, token: str) -> LinkClaims:
        """Checked before Temporal is asked anything."""
        try:
            claims = parse(token, self.public_keys, datetime.now(UTC))
        except BadLink as err:
            raise Refusal(403, "This link cannot be used", str(err)) from None
        if claims.w != wid:
            raise Refusal(403, "This link cannot be used",
                          "the link belongs to another offboarding")
        return claims

    async def _subject(self, claims: LinkClaims) -> Subject:
        assert self.ops is not None
        try:
            status = await self.ops.status(claims.w)
        except Refused:
            raise Refusal(404, "Not found", "this offboarding no longer exists") from None
        if status.run_id is not None and claims.r != status.run_id:
            raise Refusal(403, "This link cannot be used", "the link was issued in an earlier "
                          "offboarding of this client; use the link in the newest mail")
        try:
            return about(status, claims)
        except UnknownDocument as err:
            raise Refusal(403, "This link cannot be used", str(err)) from None

    def _render(self, template: str, status: int, **context: Any) -> HTMLResponse:
        html = self.env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status)

    def message(self, status: int, title: str, why: str) -> HTMLResponse:
        return self._render("message.html", status, title=title, why=why)


async def _refused(request: Request, exc: Exception) -> Response:
    portal: Portal = request.app.state.portal
    assert isinstance(exc, Refusal)
    return portal.message(exc.status, exc.title, exc.why)


async def _failed(request: Request, exc: Exception) -> Response:
    """An unexpected failure (Temporal unreachable, a bug): a plain page that says so;
    the traceback goes to the log, not to the person holding the link."""
    portal: Portal = request.app.state.portal
    return portal.message(500, "Something went wrong on our side",
                          "please try again in a few minutes; if it persists, reply to the "
                          "email you received")


async def _no_page(request: Request) -> Response:
    return PlainTextResponse("No link, no page: open the link in your email.", status_code=404)


async def _health(request: Request) -> Response:
    return PlainTextResponse("ok")


def secure_headers(app: ASGIApp) -> ASGIApp:
    """Added to every answer, errors included: it wraps the whole app, outside Starlette's
    handler of unexpected exceptions (whose 500 would otherwise go out bare). A header the
    answer set itself is replaced, never sent twice."""
    names = {name for name, _ in HEADERS}

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*(h for h in message.get("headers", [])
                                        if h[0].lower() not in names), *HEADERS]
            await send(message)
        await app(scope, receive, sending)
    return wrapped


class _Secured(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        return secure_headers(super().build_middleware_stack())


def slash_redirect(router: Router, portal_url: str) -> ASGIApp:
    """What a path no route takes gets: a redirect to the same path without (or with) its
    trailing slash when a route takes that, as Starlette does, but to the configured
    portal URL, never to the Host the request named; else a 404."""
    base = portal_url.rstrip("/")

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].removeprefix(scope.get("root_path", ""))
        if scope["type"] == "http" and path != "/":
            other = path.rstrip("/") if path.endswith("/") else path + "/"
            if other and any(route.matches({**scope, "path": other})[0] is not Match.NONE
                             for route in router.routes):
                query = scope.get("query_string", b"").decode("latin-1")
                location = base + quote(other) + (f"?{query}" if query else "")
                await RedirectResponse(location)(scope, receive, send)
                return
        await router.not_found(scope, receive, send)
    return default


def build_app(settings: Settings, client: Client | None = None,
              connect: Callable[[], Awaitable[Client]] | None = None) -> Starlette:
    """The app, with a Temporal client given (tests) or made at startup (``connect``)."""
    portal = Portal(settings)
    if client is not None:
        portal.use(client)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if portal.ops is None:
            assert connect is not None, "build_app needs a client or a way to connect"
            portal.use(await connect())
        yield

    app = _Secured(routes=[
        Route("/", _no_page),
        Route("/healthz", _health),
        Route("/o/{wid}/decide", portal.decide, methods=["POST"]),
        Route("/o/{wid}/{token}", portal.page),
        Route("/o/{wid}/{token}/{name}", portal.download),
    ], exception_handlers={Refusal: _refused, Exception: _failed}, lifespan=lifespan)
    app.router.redirect_slashes = False
    app.router.default = slash_redirect(app.router, str(settings.portal_url))
    app.state.portal = portal
    return app
