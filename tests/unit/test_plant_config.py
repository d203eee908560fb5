"""devices.toml, tags.toml and scan classes: bad configuration names file, key path and reason.

SUP-1, SUP-2, SUP-4: invalid configuration stops start-up with file, key and
reason; passwords are never accepted in the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from hmi.cli import main
from hmi.core.config import PlantConfig, load_config
from hmi.core.errors import ConfigError
from hmi.core.plant_config import ModbusDevice, OpcUaDevice, TagConfig
from hmi.core.tag_table import TagDef
from hmi.plant import build_drivers

pytestmark = pytest.mark.timeout(30)

DEMO = Path(__file__).resolve().parents[2] / "config" / "demo"

DEVICES = """
[[device]]
name = "PLC1"
kind = "modbus"
host = "127.0.0.1"
port = 5020

[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
"""

GOOD_TAG = """
[[tag]]
name = "BR101.TEMP_SP"
device = "PLC1"
address = "hr:0"
type = "float32"
writable = true
low = 4.0
high = 45.0
"""


def write(directory: Path, devices: str = DEVICES, tags: str = "", plant: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "devices.toml").write_text(devices)
    (directory / "tags.toml").write_text(tags)
    (directory / "plant.toml").write_text(plant)
    return directory


def problems(directory: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(directory)
    return caught.value.message.splitlines()


def tag(name: str, device: str, address: str, type_: str, **extra: object) -> str:
    lines = [
        "[[tag]]",
        f'name = "{name}"',
        f'device = "{device}"',
        f'address = "{address}"',
        f'type = "{type_}"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    return "\n".join(lines) + "\n\n"


def test_demo_configuration_loads_with_both_devices_and_every_point() -> None:
    cfg = load_config(DEMO)
    kinds = {d.name: type(d) for d in cfg.devices}
    assert kinds == {"PLC1": ModbusDevice, "MIC1": OpcUaDevice}
    plc = next(d for d in cfg.devices if isinstance(d, ModbusDevice))
    mic = next(d for d in cfg.devices if isinstance(d, OpcUaDevice))
    assert plc.port == 15020 and mic.endpoint == "opc.tcp://127.0.0.1:14840"
    names = {t.name for t in cfg.tags}
    assert len(names) == len(cfg.tags) == 39
    assert {"BR101.TEMP_PV", "BR101.BATCH_ID", "MIC1.Focus", "MIC1.ServerTime"} <= names
    assert {t.area for t in cfg.tags} == {"bioreactor", "imaging"}
    assert {t.equipment for t in cfg.tags} == {"BR101", "MIC1"}
    for t in cfg.tags:
        if t.writable and t.numeric:
            assert t.low is not None and t.high is not None, t.name
    assert cfg.scan_classes == {"fast": 0.5, "normal": 1.0, "slow": 5.0}


def test_demo_configuration_passes_hmi_config_check() -> None:
    result = CliRunner().invoke(main, ["config", "check", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output


def test_unknown_device_names_file_key_path_and_the_known_devices(tmp_path: Path) -> None:
    cfg = write(tmp_path, tags=GOOD_TAG + tag("BR101.TEMP", "PLC9", "ir:0", "float32"))
    assert problems(cfg) == [
        f"{cfg / 'tags.toml'}: tag[1] (BR101.TEMP).device: unknown device 'PLC9'; "
        "devices are PLC1, MIC1"
    ]


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("zz:4", "unknown Modbus table 'zz'"),
        ("hr:abc", "is not a number"),
        ("hr:70000", "above 65535"),
        ("40001x", "cannot read Modbus address"),
        ("20001", "must start with 0, 1, 3 or 4"),
    ],
)
def test_bad_modbus_address_syntax(tmp_path: Path, address: str, reason: str) -> None:
    cfg = write(tmp_path, tags=tag("T1", "PLC1", address, "uint16"))
    (line,) = problems(cfg)
    assert line.startswith(f"{cfg / 'tags.toml'}: tag[0] (T1).address: ")
    assert reason in line


def test_bad_opcua_node_id(tmp_path: Path) -> None:
    cfg = write(tmp_path, tags=tag("MIC1.Focus", "MIC1", "MIC1.Focus", "float64"))
    (line,) = problems(cfg)
    assert line.startswith(f"{cfg / 'tags.toml'}: tag[0] (MIC1.Focus).address: ")
    assert "not an OPC UA node id" in line and "ns=2;s=MIC1.Focus" in line


def test_type_that_cannot_fit_the_register_table(tmp_path: Path) -> None:
    tags = tag("PUMP", "PLC1", "coil:0", "float32") + tag("FAULT", "PLC1", "10001", "int32")
    cfg = write(tmp_path, tags=tags)
    assert problems(cfg) == [
        f"{cfg / 'tags.toml'}: tag[0] (PUMP).type: 'coil:0' is a coil, which holds one bit; "
        'float32 needs 2 registers: use type = "bool" or a register address',
        f"{cfg / 'tags.toml'}: tag[1] (FAULT).type: '10001' is a discrete input, which holds "
        'one bit; int32 needs 2 registers: use type = "bool" or a register address',
    ]


def test_a_value_that_runs_past_the_address_space_or_a_read_only_table(tmp_path: Path) -> None:
    tags = tag("END", "PLC1", "hr:65535", "float64")
    tags += tag("PV", "PLC1", "ir:0", "float32", writable=True, low=0, high=1)
    tags += tag("NAME", "PLC1", "hr:10", "string")
    lines = problems(write(tmp_path, tags=tags))
    assert "tag[0] (END).address: point 'END': address 65535 is outside 0..65535" in lines[0]
    assert "tag[1] (PV).writable: 'ir:0' is an input register, which cannot be written" in lines[1]
    assert "tag[2] (NAME).length: a Modbus string needs length" in lines[2]


def test_missing_certificate_file_is_named_with_its_resolved_path(tmp_path: Path) -> None:
    devices = """
[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
certificate = "pki/custos.der"
private_key = "pki/custos.key.pem"
"""
    cfg = write(tmp_path, devices=devices)
    (cfg / "pki").mkdir()
    (cfg / "pki" / "custos.key.pem").write_text("key")
    assert problems(cfg) == [
        f"{cfg / 'devices.toml'}: device[0] (MIC1).certificate: file not found: "
        f"{cfg / 'pki' / 'custos.der'}"
    ]
    (cfg / "pki" / "custos.der").write_bytes(b"cert")
    loaded = load_config(cfg)
    device = loaded.devices[0]
    assert isinstance(device, OpcUaDevice)
    assert device.certificate == cfg / "pki" / "custos.der"


def test_a_password_in_the_toml_is_refused_and_never_echoed(tmp_path: Path) -> None:
    devices = """
[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
username = "operator"
password = "Hunter2-secret"
"""
    cfg = write(tmp_path, devices=devices)
    lines = problems(cfg)
    assert lines[0].startswith(f"{cfg / 'devices.toml'}: device[0] (MIC1).password: ")
    assert "password_env" in lines[0] and "password_file" in lines[0]
    assert not any("Hunter2" in line for line in lines)


def test_duplicate_tag_and_device_names(tmp_path: Path) -> None:
    devices = DEVICES + '\n[[device]]\nname = "PLC1"\nkind = "modbus"\nhost = "10.0.0.2"\n'
    cfg = write(tmp_path, devices=devices, tags=GOOD_TAG + GOOD_TAG)
    assert problems(cfg) == [
        f"{cfg / 'devices.toml'}: device[2] (PLC1).name: duplicate device name "
        "(first at device[0])",
        f"{cfg / 'tags.toml'}: tag[1] (BR101.TEMP_SP).name: duplicate tag name (first at tag[0])",
    ]


def test_tag_rules_limits_deadbands_scan_classes_and_unknown_keys(tmp_path: Path) -> None:
    tags = tag("SP", "PLC1", "hr:0", "float32", writable=True, high=5)
    tags += tag("PV", "PLC1", "ir:0", "float32", deadband_percent=2)
    tags += tag("FLAG", "PLC1", "coil:1", "bool", deadband=1)
    tags += tag("SLOWEST", "PLC1", "ir:4", "float32", scan_class="glacial")
    tags += tag("MIC1.Focus", "MIC1", "ns=2;s=MIC1.Focus", "float64", scale=2, scan_class="fast")
    tags += tag("TYPO", "PLC1", "hr:20", "uint16", unit="rpm")
    lines = problems(write(tmp_path, tags=tags))
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "tag[0] (SP).low",
        "tag[1] (PV).deadband_percent",
        "tag[2] (FLAG).deadband",
        "tag[3] (SLOWEST).scan_class",
        "tag[4] (MIC1.Focus).scale",
        "tag[4] (MIC1.Focus).scan_class",
        "tag[5] (TYPO).unit",
    ]
    assert "setpoint limits low and high" in lines[0]
    assert "plant.toml [scan_classes] has fast, normal, slow" in lines[3]
    assert "unknown key; TagConfig keys are name, device" in lines[6]


def test_device_rules_kind_security_and_identity(tmp_path: Path) -> None:
    devices = """
[[device]]
name = "RTU"
kind = "modbus"
serial = { port = "/dev/ttyUSB0", parity = "X" }

[[device]]
name = "GW"
kind = "bacnet"

[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
security_mode = "Sign"
username = "operator"
"""
    cfg = write(tmp_path, devices=devices, tags=tag("X", "GW", "hr:0", "uint16"))
    lines = problems(cfg)
    keys = [line.split(": ")[1] for line in lines]
    assert keys == [
        "device[0] (RTU).serial.parity",
        "device[1] (GW).kind",
        "device[2] (MIC1).security_mode",
        "device[2] (MIC1).username",
    ]
    assert "Input should be 'N', 'E' or 'O'" in lines[0]
    assert 'must be "modbus" or "opcua"' in lines[1]
    assert 'needs security_policy = "Basic256Sha256"' in lines[2]
    assert "password_env or password_file" in lines[3]


def test_scan_classes_extend_the_defaults_and_must_be_positive(tmp_path: Path) -> None:
    cfg = write(tmp_path, plant="[scan_classes]\nfast = 0.2\nhourly = 3600\n")
    assert load_config(cfg).scan_classes == {
        "fast": 0.2,
        "normal": 1.0,
        "slow": 5.0,
        "hourly": 3600.0,
    }
    write(tmp_path, plant="[scan_classes]\nnever = 0\n")
    (line,) = problems(tmp_path)
    assert line.startswith(f"{tmp_path / 'plant.toml'}: scan_classes: ")
    assert "'never': period 0" in line


def test_percent_deadband_becomes_an_absolute_one_of_the_span() -> None:
    t = TagConfig(
        name="DO", device="PLC1", address="ir:4", type="float32", low=20, high=120,
        deadband_percent=1.5,
    )  # fmt: skip
    assert TagDef.from_config(t).deadband == pytest.approx(1.5)
    assert TagDef.from_config(t).scan_class == "normal"


def test_a_plant_config_built_in_code_is_cross_checked_too() -> None:
    with pytest.raises(ValidationError, match=r"tag\[0\] \(X\)\.device: unknown device 'NOPE'"):
        PlantConfig(tags=[TagConfig(name="X", device="NOPE", address="hr:0", type="uint16")])


def test_schema_covers_the_device_and_tag_files() -> None:
    result = CliRunner().invoke(main, ["config", "schema"])
    schema = json.loads(result.output)
    assert {"plant.toml", "security.toml", "devices.toml", "tags.toml"} <= set(schema)
    assert "scan_classes" in schema["plant.toml"]["properties"]
    assert "deadband_percent" in schema["tags.toml"]["$defs"]["TagConfig"]["properties"]


def test_config_check_reports_problems_and_fails(tmp_path: Path) -> None:
    cfg = write(tmp_path, tags=tag("T", "PLC9", "hr:0", "uint16"))
    result = CliRunner().invoke(main, ["config", "check", str(cfg)])
    assert result.exit_code == 1
    assert "tags.toml: tag[0] (T).device: unknown device 'PLC9'" in result.output


SECURE_USER = """
[[device]]
name = "MIC1"
kind = "opcua"
endpoint = "opc.tcp://127.0.0.1:4840"
username = "operator"
{source}
"""


def test_password_comes_from_the_environment_or_a_file_when_drivers_are_built(
    tmp_path: Path,
) -> None:
    cfg = write(tmp_path, devices=SECURE_USER.format(source='password_env = "MIC1_PASSWORD"'))
    config = load_config(cfg)
    with pytest.raises(ConfigError) as caught:
        build_drivers(config, environ={})
    assert caught.value.message.startswith(
        f"{cfg / 'devices.toml'}: device[0] (MIC1).password_env: environment variable "
        "MIC1_PASSWORD is not set"
    )
    drivers = build_drivers(config, environ={"MIC1_PASSWORD": "from-env"})
    assert drivers["MIC1"]._settings.password == "from-env"  # type: ignore[attr-defined]

    write(tmp_path, devices=SECURE_USER.format(source='password_file = "secrets/mic1"'))
    config = load_config(cfg)
    with pytest.raises(ConfigError, match=r"device\[0\] \(MIC1\)\.password_file: cannot read"):
        build_drivers(config, environ={})
    (cfg / "secrets").mkdir()
    (cfg / "secrets" / "mic1").write_text("from-file\n")
    drivers = build_drivers(config, environ={})
    assert drivers["MIC1"]._settings.password == "from-file"  # type: ignore[attr-defined]
