"""The real Web UI server (temporal-ui-server, as the temporalio/ui image runs it) on the
cluster, decoding through our codec server: a person opens an offboarding whose payloads
Temporal stores encrypted, and reads its input (the client's name) and its current
details (the checklist) in plain words. Headless Chromium through Playwright, as
tests/integration/test_web_ui.py on the dev server.

The screenshot is saved in the test's directory, and to docs/ with UPDATE_SCREENSHOTS=1."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest
from playwright.async_api import async_playwright, expect

from devtools.cluster import Cluster
from devtools.scim import ScimServer
from devtools.server_host import free_ports
from offboarding.client import OffboardingClient
from offboarding.config import Settings
from offboarding.models.messages import Cancel
from offboarding.security.codec import EncryptionCodec
from offboarding.security.codec_server import Access, Served, default_hosts, make_app
from offboarding.temporal import connect
from tests.helpers import client_file, new_worker, wait_until
from tests.integration.test_portal import PATIENT
from tests.integration.test_web_ui import (  # noqa: F401 (chromium: a fixture)
    CHROMIUM_FLAGS,
    ROOT,
    chromium,
    expect_current_details,
)

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]
WAIT = 90.0
SHOTS = ("cluster-ui-input.png", "cluster-ui-details.png")


async def test_the_ui_server_shows_an_offboardings_decoded_input_and_its_checklist(
        cluster: Cluster, settings: Settings, scim: ScimServer, codec: EncryptionCodec,
        chromium: str, tmp_path: Path) -> None:  # noqa: F811
    # The codec server first (the UI is given its address), allowing the UI's origin.
    ui_port, codec_port = free_ports(2, ["127.0.0.1"])
    ui_origin = f"http://127.0.0.1:{ui_port}"
    token = codec.server_token()
    codec_server = Served(make_app(codec, ui_origin=ui_origin, access=Access(token=token),
                                   hosts=default_hosts("127.0.0.1", codec_port, [])),
                          "127.0.0.1", codec_port)
    try:
        ui = await asyncio.to_thread(cluster.start_ui,
                                     f"http://127.0.0.1:{codec_port}/t/{token}", ui_port)
        await _look(cluster, ui, settings, scim, codec, chromium, tmp_path)
    finally:
        await asyncio.to_thread(cluster.stop_ui)
        codec_server.shutdown()
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        for shot in SHOTS:
            shutil.copy(tmp_path / shot, ROOT / "docs" / shot)


async def _look(cluster: Cluster, ui: str, settings: Settings, scim: ScimServer,
                codec: EncryptionCodec, browser_path: str, tmp_path: Path) -> None:
    client = await connect(cluster.address, codec, namespace=cluster.namespace)
    cf = client_file("termination", scim=scim)
    async with new_worker(client, settings):
        cli = OffboardingClient(client, settings.task_queue)
        wid = await cli.start(cf, PATIENT)
        handle = client.get_workflow_handle(wid)
        await wait_until(handle, lambda st: {"settlement-approval", "data-verification"}
                         <= set(st.waits), timeout=WAIT)
        # What Temporal stores is ciphertext: the name is nowhere in the history.
        history = (await handle.fetch_history()).to_json()
        assert cf.client_name not in history
        run_id = (await handle.describe()).run_id
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
            try:
                page = await browser.new_page(viewport={"width": 1400, "height": 1000})
                await page.goto(f"{ui}/namespaces/{cluster.namespace}/workflows/{wid}/"
                                f"{run_id}/history")
                # Its input, decoded by the codec server at the UI's request.
                heading = page.get_by_role("heading", name="Input", exact=True)
                await expect(heading).to_be_visible(timeout=30_000)
                code = heading.locator("xpath=following::*[contains(@class, 'cm-content')][1]")
                for line in (f'"client_name": "{cf.client_name}"',
                             f'"name": "{cf.contacts.primary.name}"'):
                    await expect(code).to_contain_text(line, timeout=30_000)
                await expect(page.get_by_text("binary/encrypted")).to_have_count(0)
                await expect(page.get_by_text(wid).first).to_be_visible()
                await page.screenshot(path=str(tmp_path / SHOTS[0]))
                # Its current details (a query the worker answers), decoded as well.
                await expect_current_details(page, cf.client_id, tab_seconds=30, text_seconds=30)
                await expect(page.get_by_text(wid).first).to_be_visible()
                await page.screenshot(path=str(tmp_path / SHOTS[1]))
            finally:
                await browser.close()
        await cli.send(wid, "cancel", Cancel(by="ops", reason="test over"))
        await cli.result(wid)
