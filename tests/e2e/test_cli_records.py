"""The `hmi` command for records and accounts: init, verify, passwd, users (OPS-1, REC-1, PWD-4)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from custos_testkit import write_config

from hmi.cli import main

TEMP = "FirstTemp42"
NEW = "Admin-Real-7"


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    return write_config(tmp_path / "cfg")


def hmi(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path, cfg: Path) -> Path:
    secret = tmp_path / "pw.txt"
    secret.write_text(TEMP + "\n")
    d = tmp_path / "data"
    r = hmi(
        "init",
        "--data",
        str(d),
        "--config",
        str(cfg),
        "--admin",
        "root1",
        "--admin-name",
        "Rita Root",
        "--admin-password-file",
        str(secret),
    )
    assert r.exit_code == 0, r.output
    r = hmi(
        "passwd",
        "--data",
        str(d),
        "--config",
        str(cfg),
        "--user",
        "root1",
        "--password-stdin",
        stdin=f"{TEMP}\n{NEW}\n",
    )
    assert r.exit_code == 0, r.output
    return d


def test_init_creates_keys_with_private_modes_and_audits_the_admin(data: Path):
    assert (data / "hmi.duckdb").is_file()
    assert (data / "anchors.log").read_text().strip()
    assert oct((data / "keys").stat().st_mode & 0o777) == "0o700"
    for key in (data / "keys").iterdir():
        assert oct(key.stat().st_mode & 0o777) == "0o600", key
    con = duckdb.connect(str(data / "hmi.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT actor_id, action, target FROM audit_trail ORDER BY seq"
        ).fetchall()
    finally:
        con.close()
    assert rows[0] == ("system", "add_user", "user:root1")
    assert ("root1", "change_password", "user:root1") in rows


def test_init_refuses_an_existing_data_directory(data: Path, cfg: Path, tmp_path: Path):
    before = (data / "hmi.duckdb").stat().st_mtime_ns
    secret = tmp_path / "pw2.txt"
    secret.write_text(TEMP)
    r = hmi(
        "init",
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--admin",
        "x1",
        "--admin-name",
        "X",
        "--admin-password-file",
        str(secret),
    )
    assert r.exit_code != 0 and "already exists" in r.output
    assert (data / "hmi.duckdb").stat().st_mtime_ns == before


def test_commands_without_a_terminal_name_the_missing_option(tmp_path: Path, cfg: Path, data: Path):
    r = hmi(
        "init",
        "--data",
        str(tmp_path / "new"),
        "--config",
        str(cfg),
        "--admin",
        "a1",
        "--admin-name",
        "A",
    )
    assert r.exit_code == 2 and "--admin-password-file" in r.output
    assert not (tmp_path / "new").exists()
    r = hmi("users", "list", "--data", str(data), "--config", str(cfg), "--user", "root1")
    assert r.exit_code == 2 and "--password-stdin" in r.output
    r = hmi("query", "--data", str(data), "--config", str(cfg), "SELECT 1")
    assert r.exit_code == 2 and "--user" in r.output


def test_init_refuses_a_weak_temporary_password_and_leaves_nothing(tmp_path: Path, cfg: Path):
    secret = tmp_path / "weak.txt"
    secret.write_text("short")
    r = hmi(
        "init",
        "--data",
        str(tmp_path / "d2"),
        "--config",
        str(cfg),
        "--admin",
        "a1",
        "--admin-name",
        "A",
        "--admin-password-file",
        str(secret),
    )
    assert r.exit_code == 1 and "at least 8 characters" in r.output
    assert not (tmp_path / "d2").exists()


def test_verify_ok_then_detects_tampering(data: Path):
    r = hmi("verify", "--data", str(data))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("OK: ") and len(r.output.strip().splitlines()) == 1
    con = duckdb.connect(str(data / "hmi.duckdb"))
    con.execute("DROP TRIGGER audit_records_no_update ON audit_records")
    con.execute("UPDATE audit_records SET actor_id = 'mallory' WHERE seq = 1")
    con.close()
    r = hmi("verify", "--data", str(data))
    assert r.exit_code == 1
    assert "audit_records seq 1: digest does not match" in r.output


def test_user_administration_round_trip(data: Path, cfg: Path):
    admin = ("--data", str(data), "--config", str(cfg), "--user", "root1", "--password-stdin")
    r = hmi(
        "users",
        "add",
        *admin,
        "olga",
        "--name",
        "Olga Operator",
        "--role",
        "operator",
        "--reason",
        "new starter",
        stdin=NEW + "\n",
    )
    assert r.exit_code == 0, r.output
    assert "You are signing: add user olga" in r.output and "handwritten" in r.output
    temporary = re.search(r"first login\): (\S+)", r.output).group(1)
    r = hmi(
        "passwd",
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--user",
        "olga",
        "--password-stdin",
        stdin=f"{temporary}\nOlgaWorks-1x\n",
    )
    assert r.exit_code == 1 and "may not contain the user ID" in r.output
    r = hmi(
        "passwd",
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--user",
        "olga",
        "--password-stdin",
        stdin=f"{temporary}\nWorks-4-me\n",
    )
    assert r.exit_code == 0, r.output
    r = hmi(
        "users",
        "set-roles",
        *admin,
        "olga",
        "--role",
        "operator",
        "--role",
        "supervisor",
        "--reason",
        "promotion",
        stdin=NEW + "\n",
    )
    assert r.exit_code == 0, r.output
    r = hmi("users", "deactivate", *admin, "olga", "--reason", "left", stdin=NEW + "\n")
    assert r.exit_code == 0, r.output
    r = hmi("users", "list", *admin, stdin=NEW + "\n")
    assert re.search(r"olga\s+Olga Operator\s+operator,supervisor\s+deactivated", r.output)
    r = hmi(
        "users",
        "add",
        *admin,
        "olga",
        "--name",
        "Olga Two",
        "--role",
        "operator",
        "--reason",
        "rehire",
        stdin=NEW + "\n",
    )
    assert r.exit_code == 1 and "never reused" in r.output
    r = hmi("verify", "--data", str(data))
    assert r.exit_code == 0, r.output


def test_wrong_admin_password_is_refused_and_recorded(data: Path, cfg: Path):
    r = hmi(
        "users",
        "unlock",
        "--data",
        str(data),
        "--config",
        str(cfg),
        "--user",
        "root1",
        "--password-stdin",
        "root1",
        "--reason",
        "x",
        stdin="wrong-password-1\n",
    )
    assert r.exit_code == 1 and "Login failed" in r.output
    con = duckdb.connect(str(data / "hmi.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT user_id, terminal_id FROM security_events WHERE event = 'login_failed'"
        ).fetchall()
    finally:
        con.close()
    assert rows == [("root1", f"cli@{os.uname().nodename}")]


def test_installed_entry_point_and_held_database(data: Path, cfg: Path):
    """The real `hmi` executable; a database held by another process is named as such."""
    hmi_exe = Path(sys.executable).with_name("hmi")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, duckdb; c = duckdb.connect(sys.argv[1]); print('held', flush=True); "
            "sys.stdin.read()",
            str(data / "hmi.duckdb"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        r = subprocess.run(
            [str(hmi_exe), "verify", "--data", str(data)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert r.returncode == 1
        assert "held by a running Custos runtime" in r.stderr
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    r = subprocess.run(
        [str(hmi_exe), "verify", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 0 and r.stdout.startswith("OK")
