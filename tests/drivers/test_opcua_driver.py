"""OpcUaDriver against the simulated microscope: real asyncua servers on 127.0.0.1."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from asyncua import Client, ua
from opcua_fixtures import (
    USERS,
    Collector,
    DriverFactory,
    LinkLog,
    RecordingSleep,
    ua_certs_fixture,  # noqa: F401
    ua_drivers_fixture,  # noqa: F401
    ua_secure_server_fixture,  # noqa: F401
    ua_server_fixture,  # noqa: F401
    wait_until,
)

from drivers.base import (
    DeviceClock,
    DeviceRefused,
    LinkDown,
    LinkState,
    MethodCalling,
    PointError,
    Quality,
    Subscribing,
)
from drivers.base import Driver as DriverProtocol
from drivers.opcua import (
    OpcUaPoint,
    OpcUaSettings,
    SecurityMode,
    SecurityPolicy,
    browse,
    format_browse,
)
from drivers.sim import microscope as mic
from drivers.sim.certs import CertPair
from drivers.sim.microscope import MicroscopeServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


async def _settle(srv: MicroscopeServer, seconds: float = 10.0) -> None:
    for _ in range(round(seconds / 0.1)):
        await srv.step(0.1)


async def test_driver_implements_the_protocols(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    assert isinstance(driver, DriverProtocol)
    assert isinstance(driver, Subscribing)
    assert isinstance(driver, MethodCalling)
    settings = OpcUaSettings("opc.tcp://h:4840", username="u", password=USERS["operator"])
    assert USERS["operator"] not in repr(settings)


async def test_subscription_delivers_values_with_source_timestamps(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    assert driver.link_state is LinkState.UP
    got = Collector()
    await driver.subscribe(["focus_actual", "stage_ready", "missing"], got)
    await wait_until(lambda: got.has("focus_actual", lambda s: s.good), "initial value")
    await wait_until(lambda: "missing" in got.latest, "missing node reported")
    assert got.latest["missing"].quality is Quality.BAD
    assert got.latest["missing"].reason == "BadNodeIdUnknown"

    target = ua_server.state.focus + 7.0
    before = datetime.now(UTC)
    await driver.write("focus", target)
    await _settle(ua_server, 0.5)
    await wait_until(lambda: got.has("focus_actual", lambda s: s.value == target), "new focus")
    sample = got.latest["focus_actual"]
    assert sample.quality is Quality.GOOD and sample.reason == ""
    assert sample.source_time is not None and sample.source_time.tzinfo is not None
    assert before - timedelta(seconds=1) <= sample.source_time <= datetime.now(UTC)
    assert sample.server_time >= sample.source_time - timedelta(seconds=1)


async def test_typed_write_is_accepted_by_strict_server_and_plain_write_value_is_not(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    back = await driver.write("focus", 1300)
    assert back.value == 1300.0 and back.good

    async with Client(ua_server.url) as raw:
        node = raw.get_node(mic.FOCUS)
        with pytest.raises(ua.UaStatusCodeError) as refused:
            await node.write_value(1301.0)
        assert refused.value.code == ua.StatusCodes.BadWriteNotSupported
        with pytest.raises(ua.UaStatusCodeError):
            await node.write_value(1)
        untimed_int64 = ua.DataValue(ua.Variant(1302, ua.VariantType.Int64), StatusCode=None)
        with pytest.raises(ua.UaStatusCodeError) as mismatch:
            await node.write_attribute(ua.AttributeIds.Value, untimed_int64)
        assert mismatch.value.code == ua.StatusCodes.BadTypeMismatch
        ua_server.strict = False
        try:
            await node.write_value(1303.0)
        finally:
            ua_server.strict = True
        assert await node.read_value() == 1303.0


async def test_int_is_converted_to_the_int16_node_type(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    back = await driver.write("objective", 3)
    assert back.value == 3 and back.good
    async with Client(ua_server.url) as raw:
        dv = await raw.get_node(mic.OBJECTIVE).read_data_value()
        assert dv.Value is not None and dv.Value.VariantType is ua.VariantType.Int16

    with pytest.raises(PointError, match="Int16 range"):
        await driver.write("objective", 40000)
    with pytest.raises(PointError, match="not an integer"):
        await driver.write("objective", 2.5)
    with pytest.raises(PointError, match="not a number"):
        await driver.write("focus", "near")
    with pytest.raises(PointError, match="not writable"):
        await driver.write("focus_actual", 1.0)
    with pytest.raises(PointError, match="unknown point"):
        await driver.write("nope", 1.0)
    with pytest.raises(DeviceRefused, match="BadOutOfRange"):
        await driver.write("objective", 9)
    assert (await driver.read(["objective"]))[0].value == 3


async def test_bad_and_uncertain_status_become_quality_with_the_status_name(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    got = Collector()
    await driver.subscribe(["illumination_actual"], got)
    await wait_until(lambda: got.has("illumination_actual", lambda s: s.good), "initial value")
    try:
        await ua_server.inject_status(mic.ILLUMINATION_ACTUAL, ua.StatusCodes.BadSensorFailure)
        await wait_until(
            lambda: got.has("illumination_actual", lambda s: s.quality is Quality.BAD), "BAD"
        )
        assert got.latest["illumination_actual"].reason == "BadSensorFailure"
        (read,) = await driver.read(["illumination_actual"])
        assert (read.quality, read.reason) == (Quality.BAD, "BadSensorFailure")

        await ua_server.inject_status(
            mic.ILLUMINATION_ACTUAL, ua.StatusCodes.UncertainLastUsableValue
        )
        await wait_until(
            lambda: got.has("illumination_actual", lambda s: s.quality is Quality.UNCERTAIN),
            "UNCERTAIN",
        )
        assert got.latest["illumination_actual"].reason == "UncertainLastUsableValue"
    finally:
        await ua_server.clear_status(mic.ILLUMINATION_ACTUAL)
    await wait_until(lambda: got.has("illumination_actual", lambda s: s.good), "GOOD again")


async def test_method_call_returns_the_capture_outputs(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    await driver.start()
    image, width, height, settings = await driver.call(mic.CAMERA, mic.CAPTURE, 12)
    assert isinstance(image, bytes) and image.startswith(b"\x89PNG\r\n\x1a\n")
    assert (width, height) == mic.IMAGE_SIZE
    assert isinstance(settings, str) and json.loads(settings)["exposure_ms"] == 12.0

    with pytest.raises(DeviceRefused, match="BadOutOfRange"):
        await driver.call(mic.CAMERA, mic.CAPTURE, -1.0)
    with pytest.raises(PointError, match="takes 1 arguments"):
        await driver.call(mic.CAMERA, mic.CAPTURE)
    with pytest.raises(PointError, match="not a number"):
        await driver.call(mic.CAMERA, mic.CAPTURE, "long")


async def test_browse_finds_the_microscope_nodes(ua_server: MicroscopeServer) -> None:
    entries = await browse(ua_server.url, depth=3)
    by_id = {e.node_id: e for e in entries}
    focus = by_id[mic.FOCUS]
    assert (focus.path, focus.node_class, focus.data_type, focus.writable) == (
        "MIC1/Focus",
        "Variable",
        "Double",
        True,
    )
    assert by_id[mic.FOCUS_ACTUAL].writable is False
    assert by_id[mic.OBJECTIVE].data_type == "Int16"
    assert by_id[mic.STAGE_READY].data_type == "Boolean"
    assert by_id[mic.CAPTURE].node_class == "Method"
    assert by_id[mic.CAPTURE].path == "MIC1/Camera/Capture"
    assert all(not e.node_id.startswith("i=") for e in entries)
    table = format_browse(entries)
    assert table.splitlines()[0].split() == ["NODE", "ID", "PATH", "CLASS", "TYPE", "RW"]
    assert any(
        line.split() == [mic.FOCUS, "MIC1/Focus", "Variable", "Double", "rw"]
        for line in table.splitlines()
    )


@pytest.mark.parametrize("mode", [SecurityMode.SIGN_AND_ENCRYPT, SecurityMode.SIGN])
async def test_username_login_over_basic256sha256(
    ua_secure_server: MicroscopeServer,
    ua_certs: dict[str, CertPair],
    ua_drivers: DriverFactory,
    mode: SecurityMode,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secure = {
        "security_policy": SecurityPolicy.BASIC256SHA256,
        "security_mode": mode,
        "client_certificate": ua_certs["client"].cert,
        "client_private_key": ua_certs["client"].key,
        "username": "operator",
    }
    driver = ua_drivers(ua_secure_server.url, password=USERS["operator"], **secure)
    await driver.start()
    assert driver.link_state is LinkState.UP, driver.last_error
    assert (await driver.write("illumination", 42)).value == 42.0

    wrong = ua_drivers(
        ua_secure_server.url,
        password="not-the-password",
        server_certificate=ua_certs["server"].cert,
        **secure,
    )
    links = LinkLog()
    wrong.on_link_change(links)
    await wrong.start()
    assert wrong.link_state is LinkState.DOWN
    assert "login refused for user 'operator'" in wrong.last_error
    assert "BadUserAccessDenied" in wrong.last_error
    assert links.events[-1][0] is LinkState.DOWN and "BadUserAccessDenied" in links.events[-1][1]
    with pytest.raises(LinkDown):
        await wrong.write("illumination", 1.0)
    assert USERS["operator"] not in caplog.text
    assert "not-the-password" not in caplog.text


async def test_anonymous_login_is_refused_where_only_users_may_connect(
    ua_secure_server: MicroscopeServer, ua_certs: dict[str, CertPair], ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(
        ua_secure_server.url,
        security_policy=SecurityPolicy.BASIC256SHA256,
        client_certificate=ua_certs["client"].cert,
        client_private_key=ua_certs["client"].key,
    )
    await driver.start()
    assert driver.link_state is LinkState.DOWN
    assert "BadIdentityTokenRejected" in driver.last_error


async def test_a_pinned_server_certificate_that_does_not_match_is_refused(
    ua_secure_server: MicroscopeServer, ua_certs: dict[str, CertPair], ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(
        ua_secure_server.url,
        security_policy=SecurityPolicy.BASIC256SHA256,
        client_certificate=ua_certs["client"].cert,
        client_private_key=ua_certs["client"].key,
        server_certificate=ua_certs["client"].cert,
        username="operator",
        password=USERS["operator"],
        connect_timeout_s=1.0,
    )
    await driver.start()
    assert driver.link_state is LinkState.DOWN
    assert driver.last_error == "no answer within 1.0 s"


async def test_backoff_doubles_up_to_the_cap_while_the_server_is_unreachable(
    ua_drivers: DriverFactory,
) -> None:
    sleep = RecordingSleep()
    driver = ua_drivers("opc.tcp://127.0.0.1:9", sleep=sleep)
    links = LinkLog()
    driver.on_link_change(links)
    got = Collector()
    await driver.subscribe(["focus_actual"], got)
    await driver.start()
    assert driver.link_state is LinkState.DOWN
    await wait_until(lambda: len(sleep.delays) >= 5, "five retries")
    assert sleep.delays[:5] == pytest.approx([0.05, 0.1, 0.2, 0.2, 0.2])
    assert [state for state, _ in links.events] == [LinkState.CONNECTING, LinkState.DOWN]
    assert got.latest["focus_actual"].quality is Quality.BAD
    assert (await driver.read(["focus_actual"]))[0].reason.startswith("link down:")


async def test_server_restart_makes_points_bad_then_resubscribes(
    ua_drivers: DriverFactory,
) -> None:
    sleep = RecordingSleep()
    async with MicroscopeServer(tick=None, strict=True) as srv:
        driver = ua_drivers(srv.url, sleep=sleep)
        links = LinkLog()
        driver.on_link_change(links)
        await driver.start()
        got = Collector()
        points = ["focus_actual", "stage_ready", "capture_count"]
        await driver.subscribe(points, got)
        await wait_until(lambda: all(got.has(p, lambda s: s.good) for p in points), "values")

        await srv.stop()
        await wait_until(lambda: driver.link_state is LinkState.DOWN, "link DOWN")
        await wait_until(
            lambda: all(got.has(p, lambda s: s.quality is Quality.BAD) for p in points), "BAD"
        )
        assert all(got.latest[p].reason.startswith("link down: ") for p in points)
        assert all(got.latest[p].value is None for p in points)

        await srv.start()
        await wait_until(lambda: driver.link_state is LinkState.UP, "link UP", timeout=20)
        await wait_until(lambda: all(got.has(p, lambda s: s.good) for p in points), "values back")
        target = srv.state.focus_sp + 3.0
        await driver.write("focus", target)
        await _settle(srv, 0.2)
        await wait_until(lambda: got.has("focus_actual", lambda s: s.value == target), "new value")

    states = [state for state, _ in links.events]
    assert states[:4] == [LinkState.CONNECTING, LinkState.UP, LinkState.DOWN, LinkState.UP]
    assert sleep.delays and max(sleep.delays) <= 0.2
    assert driver.reconnects >= 1
    assert driver.dropped_notifications == 0


async def test_points_must_be_unique_and_known(ua_drivers: DriverFactory) -> None:
    driver = ua_drivers("opc.tcp://127.0.0.1:9")
    with pytest.raises(PointError, match="unknown point"):
        await driver.subscribe(["nope"], Collector())
    with pytest.raises(PointError, match="declared twice"):
        ua_drivers("opc.tcp://127.0.0.1:9", points=[OpcUaPoint("a", "i=1"), OpcUaPoint("a", "i=2")])


async def test_device_time_is_the_servers_current_time(
    ua_server: MicroscopeServer, ua_drivers: DriverFactory
) -> None:
    driver = ua_drivers(ua_server.url)
    assert isinstance(driver, DeviceClock)
    with pytest.raises(LinkDown):
        await driver.device_time()
    await driver.start()
    before = datetime.now(UTC)
    device = await driver.device_time()
    after = datetime.now(UTC)
    assert device.tzinfo is not None
    # the simulator answers CurrentTime at the moment of the read (encoded to 100 ns)
    assert before - timedelta(milliseconds=1) <= device <= after
