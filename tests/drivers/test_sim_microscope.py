"""The simulated microscope, seen through a plain asyncua client."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from asyncua import Client, ua
from opcua_fixtures import ua_server_fixture  # noqa: F401
from PIL import Image, ImageFilter, ImageStat

from drivers.sim import microscope as mic
from drivers.sim.microscope import MicroscopeServer

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


@pytest_asyncio.fixture(loop_scope="module")
async def client(ua_server: MicroscopeServer) -> AsyncIterator[Client]:
    async with Client(ua_server.url) as c:
        yield c


async def _write(client: Client, node_id: str, value: float) -> None:
    """A typed, timestamp-free write, as the strict server requires."""
    node = client.get_node(node_id)
    dv = ua.DataValue(ua.Variant(value, ua.VariantType.Double), StatusCode=None)
    await node.write_attribute(ua.AttributeIds.Value, dv)


async def _settle(srv: MicroscopeServer, seconds: float) -> None:
    for _ in range(round(seconds / 0.1)):
        await srv.step(0.1)


Capture = tuple[Image.Image, bytes, dict[str, object]]


async def _capture(client: Client, exposure_ms: float) -> Capture:
    camera = client.get_node(mic.CAMERA)
    png, width, height, settings = await camera.call_method(
        ua.NodeId.from_string(mic.CAPTURE), ua.Variant(exposure_ms, ua.VariantType.Double)
    )
    image = Image.open(io.BytesIO(png))
    image.load()
    assert image.format == "PNG"
    assert image.size == (width, height) == mic.IMAGE_SIZE
    return image, png, json.loads(settings)


def _sharpness(image: Image.Image) -> float:
    return float(ImageStat.Stat(image.filter(ImageFilter.FIND_EDGES)).var[0])


def _brightness(image: Image.Image) -> float:
    return float(ImageStat.Stat(image).mean[0])


async def test_captures_follow_focus_and_illumination(
    ua_server: MicroscopeServer, client: Client
) -> None:
    await _write(client, mic.FOCUS, ua_server.best_focus)
    await _write(client, mic.ILLUMINATION, 40.0)
    await _settle(ua_server, 5.0)
    sharp, sharp_png, settings = await _capture(client, 10.0)
    assert settings["focus_um"] == ua_server.best_focus
    assert settings["illumination_pct"] == pytest.approx(40.0)
    assert settings["exposure_ms"] == 10.0

    await _write(client, mic.FOCUS, ua_server.best_focus + 30.0)
    await _settle(ua_server, 1.0)
    blurred, blurred_png, _ = await _capture(client, 10.0)
    assert blurred_png != sharp_png
    assert _sharpness(blurred) < 0.5 * _sharpness(sharp)

    await _write(client, mic.ILLUMINATION, 80.0)
    await _settle(ua_server, 5.0)
    bright, bright_png, settings = await _capture(client, 10.0)
    assert bright_png != blurred_png
    assert _brightness(bright) > 1.5 * _brightness(blurred)
    assert settings["illumination_pct"] == pytest.approx(80.0)
    count = await client.get_node(mic.CAPTURE_COUNT).read_value()
    assert count == ua_server.state.capture_count >= 3


async def test_stage_position_changes_the_image(
    ua_server: MicroscopeServer, client: Client
) -> None:
    await _write(client, mic.FOCUS, ua_server.best_focus)
    await _settle(ua_server, 5.0)
    _, here, _ = await _capture(client, 10.0)
    await _write(client, mic.STAGE_X, ua_server.state.stage_x_sp + 17.0)
    await _settle(ua_server, 0.5)
    _, there, settings = await _capture(client, 10.0)
    assert settings["stage_x_um"] == ua_server.state.stage_x
    assert there != here


async def test_stage_ready_follows_focus_and_stage_motion(
    ua_server: MicroscopeServer, client: Client
) -> None:
    ready = client.get_node(mic.STAGE_READY)
    moving = client.get_node(mic.STAGE_MOVING)
    await _write(client, mic.FOCUS, ua_server.best_focus)
    await _settle(ua_server, 5.0)
    assert await ready.read_value() is True

    await _write(client, mic.FOCUS, ua_server.best_focus + 10.0)
    await _settle(ua_server, 0.5)
    assert await ready.read_value() is False
    await _write(client, mic.FOCUS, ua_server.best_focus + 1.0)
    await _settle(ua_server, 0.5)
    assert await ready.read_value() is True

    await _write(client, mic.STAGE_Y, ua_server.state.stage_y_sp + 1000.0)
    await ua_server.step(0.1)
    assert (await moving.read_value(), await ready.read_value()) == (True, False)
    await _settle(ua_server, 1.0)
    assert (await moving.read_value(), await ready.read_value()) == (False, True)


async def test_illumination_actual_follows_the_setpoint(
    ua_server: MicroscopeServer, client: Client
) -> None:
    actual = client.get_node(mic.ILLUMINATION_ACTUAL)
    await _write(client, mic.ILLUMINATION, 20.0)
    await _settle(ua_server, 5.0)
    await _write(client, mic.ILLUMINATION, 70.0)
    await ua_server.step(0.1)
    partway = await actual.read_value()
    assert 20.0 < partway < 70.0
    await _settle(ua_server, 5.0)
    assert await actual.read_value() == pytest.approx(70.0)


async def test_writes_are_checked_against_limits_and_access(
    ua_server: MicroscopeServer, client: Client
) -> None:
    with pytest.raises(ua.UaStatusCodeError) as out_of_range:
        await _write(client, mic.ILLUMINATION, 120.0)
    assert out_of_range.value.code == ua.StatusCodes.BadOutOfRange
    with pytest.raises(ua.UaStatusCodeError) as read_only:
        await _write(client, mic.FOCUS_ACTUAL, 1.0)
    assert read_only.value.code == ua.StatusCodes.BadUserAccessDenied
    with pytest.raises(ua.UaStatusCodeError) as bad_exposure:
        await _capture(client, 0.0)
    assert bad_exposure.value.code == ua.StatusCodes.BadOutOfRange


async def test_nodes_have_explicit_data_types(client: Client) -> None:
    expected = {
        mic.FOCUS: ua.VariantType.Double,
        mic.STAGE_X: ua.VariantType.Double,
        mic.ILLUMINATION_ACTUAL: ua.VariantType.Double,
        mic.STAGE_READY: ua.VariantType.Boolean,
        mic.OBJECTIVE: ua.VariantType.Int16,
        mic.CAPTURE_COUNT: ua.VariantType.UInt32,
        mic.SERVER_TIME: ua.VariantType.DateTime,
    }
    for node_id, vtype in expected.items():
        assert await client.get_node(node_id).read_data_type_as_variant_type() == vtype, node_id
    namespaces = await client.get_namespace_array()
    assert namespaces[2] == mic.NAMESPACE_URI


async def test_real_time_task_runs_and_restart_keeps_port_and_state() -> None:
    async with MicroscopeServer(tick=0.05) as srv, Client(srv.url) as c:
        port = srv.port
        assert port != 0 and srv.url == f"opc.tcp://127.0.0.1:{port}"
        await _write(c, mic.FOCUS, 1010.0)
        actual = c.get_node(mic.FOCUS_ACTUAL)
        values: list[float] = []

        async def poll() -> bool:
            values.append(await actual.read_value())
            return values[-1] == 1010.0

        deadline = asyncio.get_running_loop().time() + 10.0
        while not await poll():
            assert asyncio.get_running_loop().time() < deadline, values[-5:]
            await asyncio.sleep(0.02)
        assert srv.state.steps > 0
    async with srv:
        assert srv.port == port
        async with Client(srv.url) as c:
            assert await c.get_node(mic.FOCUS).read_value() == 1010.0
            assert await c.get_node(mic.FOCUS_ACTUAL).read_value() == 1010.0
