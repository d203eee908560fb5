"""`hmi web`: a browser tab is a real `hmi terminal` process behind textual-serve.

The runtime serves terminals on a Unix socket; the gateway listens on 127.0.0.1;
a websocket client speaks textual-serve's browser protocol (JSON envelopes in,
terminal output back as binary frames), logs in by typing, and the records
show the session at the browser terminal with the browser's address.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shlex
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner
from custos_plant import ApiPlant
from custos_testkit import PLANT_PASSWORD, PLANT_USERS, HmiProcess, until

from hmi.cli import main
from hmi.cli.web import web_command
from hmi.core.errors import HmiError
from hmi.remote import protocol as rpc
from hmi.remote.certs import CertificateAuthority
from hmi.remote.client import RpcClient
from hmi.remote.server import DISCONNECTED, TerminalServer
from hmi.remote.tls import PeerCheck, client_context, server_context
from hmi.web import MAX_TABS, TerminalTarget, WebGateway, browser_address, origin_allowed

pytestmark = pytest.mark.timeout(60)
WEB_TERMINAL = "T-WEB-1"
ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


class Screen:
    """What the browser would draw, as plain text: the tab's output with escapes removed."""

    def __init__(self, websocket: aiohttp.ClientWebSocketResponse) -> None:
        self.websocket = websocket
        self.raw = bytearray()
        self.reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.websocket:
            if message.type == aiohttp.WSMsgType.BINARY:
                self.raw.extend(message.data)

    @property
    def text(self) -> str:
        return ESCAPES.sub("", self.raw.decode("utf-8", "replace"))

    async def type(self, keys: str) -> None:
        await self.websocket.send_json(["stdin", keys])

    async def close(self) -> None:
        await self.websocket.close()
        self.reading.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reading


async def login_screen(http: aiohttp.ClientSession, url: str) -> Screen:
    """A tab opened as the gateway's own page opens it (same Origin)."""
    websocket = await http.ws_connect(f"{url}/ws?width=100&height=32", headers={"Origin": url})
    screen = Screen(websocket)
    await until(
        lambda: f"{WEB_TERMINAL}: log in to continue" in screen.text,
        timeout=30,
        what="the login screen in the browser",
    )
    return screen


def logins_at_web(plant: ApiPlant) -> list[tuple[object, ...]]:
    return plant.query(
        "SELECT user_id, source, session_id FROM security_event_records "
        "WHERE event = 'login' AND terminal_id = ? ORDER BY seq",
        [WEB_TERMINAL],
    )


async def test_a_browser_tab_logs_in_and_the_record_says_where_it_was(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path]
) -> None:
    server, path = served
    gateway = WebGateway(TerminalTarget(f"unix:{path}", WEB_TERMINAL), host="127.0.0.1", port=0)
    url = await gateway.start()
    assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
    user = PLANT_USERS[0][0]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.get(url) as page:
                assert page.status == 200
                assert f"ws://127.0.0.1:{gateway.port}/ws" in await page.text()
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(f"{url}/ws", headers={"Origin": "http://evil.example"})
            assert refused.value.status == 403 and not gateway.tabs
            screen = await login_screen(http, url)
            try:
                await screen.websocket.send_json(["resize", {"width": 100, "height": 32}])
                (tab,) = gateway.tabs
                assert tab._process is not None and tab._process.returncode is None
                # One websocket message, as a fast typist or a paste on a slow link sends
                # it: the password still lands in the masked field, never in the user ID.
                await screen.type(f"{user}\r{PLANT_PASSWORD}\r")
                await until(lambda: logins_at_web(api_plant), timeout=20, what="the login")
                ((who, source, session_id),) = logins_at_web(api_plant)
                assert who == user
                assert str(source).startswith("web:127.0.0.1 (")
                assert PLANT_PASSWORD not in screen.text
                failed = api_plant.query(
                    "SELECT count(*) FROM security_event_records WHERE event <> 'login' "
                    "AND terminal_id = ?",
                    [WEB_TERMINAL],
                )
                assert failed == [(0,)]

                # Ctrl-C on `hmi web`: the gateway stops, the tab's terminal ends,
                # and the runtime records the session ended with the link.
                await gateway.stop()
                assert tab._process.returncode is not None
                assert not gateway.tabs
                await until(lambda: not server.connections, timeout=10, what="the link dropped")
                ended = api_plant.query(
                    "SELECT user_id, terminal_id FROM security_event_records "
                    "WHERE session_id = ? AND event = ?",
                    [session_id, DISCONNECTED],
                )
                assert ended == [(user, WEB_TERMINAL)]
            finally:
                await screen.close()
    finally:
        await gateway.stop()


async def test_the_runtime_records_the_browser_address_as_the_gateways_claim(
    api_plant: ApiPlant, served: tuple[TerminalServer, Path], tmp_path: Path
) -> None:
    _, path = served
    client = await RpcClient.unix(path)
    try:
        hello = await client.hello(WEB_TERMINAL, web_client="10.0.0.7")
        assert hello["source"].startswith("web:10.0.0.7 (")
    finally:
        await client.close()
    client = await RpcClient.unix(path)
    try:
        with pytest.raises(HmiError, match="web_client"):
            await client.hello(WEB_TERMINAL, web_client="10.0.0.7 (admin)")
    finally:
        await client.close()

    assert api_plant.runtime.services is not None
    ca = CertificateAuthority.init(tmp_path / "certs", "Test plant")
    ca.issue_server(hosts=["127.0.0.1"])
    gateway_cert = ca.issue_terminal(WEB_TERMINAL)
    server = TerminalServer(
        api_plant.api,
        api_plant.runtime.services.config.terminals,
        peer_check=PeerCheck(ca.directory),
    )
    listener = await asyncio.start_server(
        server.serve_tls, "127.0.0.1", 0, ssl=server_context(ca.directory), limit=rpc.MAX_MESSAGE
    )
    try:
        port = listener.sockets[0].getsockname()[1]
        context = client_context(gateway_cert.cert, gateway_cert.key, ca.ca_cert_path)
        client = await RpcClient.tls("127.0.0.1", port, context)
        try:
            hello = await client.hello(None, web_client="10.0.0.7")
            assert (hello["terminal"], hello["source"]) == (
                WEB_TERMINAL,
                "tls:127.0.0.1 web:10.0.0.7",
            )
        finally:
            await client.close()
    finally:
        listener.close()
        await listener.wait_closed()


def test_hmi_web_listens_on_loopback_only() -> None:
    runner = CliRunner()
    for listen in ("0.0.0.0:8000", "10.0.0.5:8000", "[::]:8000"):
        result = runner.invoke(
            main, ["web", "--listen", listen, "--connect", "unix:x.sock", "--terminal", "T-WEB-1"]
        )
        assert result.exit_code == 2, result.output
        assert "is not a loopback address" in result.output
        assert "--public-url" in result.output and "ssh -L" in result.output
    result = runner.invoke(
        main,
        [
            "web",
            "--connect",
            "unix:x.sock",
            "--terminal",
            "T-WEB-1",
            "--public-url",
            "http://x.example",
        ],
    )
    assert result.exit_code == 2 and "--public-url http://x.example" in result.output
    result = runner.invoke(main, ["web", "--connect", "tls://127.0.0.1:7843"])
    assert result.exit_code == 2 and "--cert, --key and --ca" in result.output


def test_each_tab_command_is_quoted_and_carries_the_browser_address(tmp_path: Path) -> None:
    odd = tmp_path / "a dir; rm -rf x" / "custos.sock"
    command = TerminalTarget(f"unix:{odd}", "T-WEB-1").command("10.0.0.7")
    words = shlex.split(command)
    assert words[0] == "exec"
    assert words[words.index("--connect") + 1] == f"unix:{odd}"
    assert words[-2:] == ["--web-client", "10.0.0.7"]
    assert browser_address("127.0.0.1", "203.0.113.9, 10.0.0.7", trust_forwarded=True) == (
        "10.0.0.7"
    )
    assert browser_address("127.0.0.1", "10.0.0.7", trust_forwarded=False) == "127.0.0.1"
    assert browser_address("10.0.0.9", "10.0.0.7", trust_forwarded=True) == "10.0.0.9"
    assert browser_address("127.0.0.1", "nonsense", trust_forwarded=True) == "127.0.0.1"


def test_only_the_gateways_own_page_opens_a_terminal() -> None:
    public = "https://custos.plant.example"
    assert origin_allowed(public, public)
    assert origin_allowed(None, public)
    assert origin_allowed("http://localhost:8000", "http://127.0.0.1:8000")  # an SSH tunnel
    for page in ("https://evil.example", "http://custos.plant.example", "null"):
        assert not origin_allowed(page, public)


async def test_hmi_web_runs_until_sigterm_and_ends_every_tab(
    served: tuple[TerminalServer, Path],
) -> None:
    server, path = served
    gateway = HmiProcess(
        "web", "--listen", "127.0.0.1:0", "--connect", f"unix:{path}", "--terminal", WEB_TERMINAL
    )
    try:
        found = await gateway.started("Serving browser", 30)
        url = found.split(" on ", 1)[1].split(" ", 1)[0]
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            screens = [await login_screen(http, url) for _ in range(2)]
            try:
                assert len(server.connections) == 2  # one terminal process per tab
                status = await gateway.stop(20)
                await until(lambda: not server.connections, timeout=10, what="the tabs ended")
            finally:
                for screen in screens:
                    await screen.close()
    finally:
        await gateway.stop(20)
    assert status == 0, gateway.log
    assert gateway.line("Stopping:"), gateway.log


async def test_a_gateway_opens_no_more_tabs_than_it_allows(
    served: tuple[TerminalServer, Path],
) -> None:
    _, path = served
    gateway = WebGateway(TerminalTarget(f"unix:{path}", WEB_TERMINAL), port=0, max_tabs=1)
    url = await gateway.start()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            screen = await login_screen(http, url)
            try:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await http.ws_connect(f"{url}/ws", headers={"Origin": url})
                assert refused.value.status == 503 and len(gateway.tabs) == 1
            finally:
                await screen.close()
            await until(lambda: not gateway.tabs, timeout=15, what="the first tab closed")
            second = await login_screen(http, url)  # a place is free again
            await second.close()
    finally:
        await gateway.stop()
    assert any(p.name == "max_tabs" and p.default == MAX_TABS for p in web_command.params)
