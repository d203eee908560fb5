"""`hmi backup` and `hmi restore` (OPS-3, 11.10(c)): real data directory, real command."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result
from custos_testkit import write_config

from hmi.cli import main
from hmi.store.backup import complete_backups


def hmi(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    cfg = write_config(tmp_path / "cfg")
    secret = tmp_path / "pw.txt"
    secret.write_text("FirstTemp42\n")
    d = tmp_path / "data"
    r = hmi(
        "init", "--data", str(d), "--config", str(cfg), "--admin", "root1",
        "--admin-name", "Rita Root", "--admin-password-file", str(secret),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    return d


def audit(data: Path, action: str) -> list[tuple[str, str]]:
    con = duckdb.connect(str(data / "hmi.duckdb"), read_only=True)
    try:
        rows = con.execute(
            "SELECT outcome, target FROM audit_records WHERE action = ? ORDER BY seq", [action]
        ).fetchall()
    finally:
        con.close()
    return [(str(o), str(t)) for o, t in rows]


def test_backup_then_restore_is_recorded_on_both_sides(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    r = hmi("backup", "--data", str(data), "--to", str(dest))
    assert r.exit_code == 0, r.output
    [backup] = complete_backups(dest)
    assert audit(data, "backup") == [("done", f"backup:{backup}")]

    new = tmp_path / "restored"
    r = hmi("restore", "--from", str(backup), "--data", str(new), "--keys", str(data / "keys"))
    assert r.exit_code == 0, r.output
    assert "OK:" in r.output
    assert audit(new, "restore") == [("done", f"backup:{backup}")]
    assert audit(new, "backup") == []  # the backup's own record came after its snapshot
    assert hmi("verify", "--data", str(new)).exit_code == 0


def test_failed_backup_is_recorded(data: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    r = hmi("backup", "--data", str(data), "--to", str(blocker / "b"))
    assert r.exit_code == 1
    assert "No backup was made" in r.output
    assert audit(data, "backup") == [("failed", f"backup:{blocker / 'b'}")]


def test_restore_refuses_a_tampered_backup_naming_the_file(data: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    assert hmi("backup", "--data", str(data), "--to", str(dest)).exit_code == 0
    [backup] = complete_backups(dest)
    db = backup / "hmi.duckdb"
    with db.open("r+b") as f:
        f.seek(db.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    new = tmp_path / "restored"
    r = hmi("restore", "--from", str(backup), "--data", str(new), "--keys", str(data / "keys"))
    assert r.exit_code == 1
    assert f"{db} does not match the backup manifest" in r.output
    assert not new.exists()


def test_sealed_keys_let_a_restore_go_without_the_keys_directory(
    data: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "backups"
    passphrase = "plant keys passphrase 7"
    r = CliRunner().invoke(
        main,
        ["backup", "--data", str(data), "--to", str(dest), "--private-keys", "--passphrase-stdin"],
        input=passphrase + "\n",
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert "private keys sealed" in r.output
    [backup] = complete_backups(dest)

    wrong = CliRunner().invoke(
        main,
        ["restore", "--from", str(backup), "--data", str(tmp_path / "x"), "--passphrase-stdin"],
        input="not the passphrase\n",
    )
    assert wrong.exit_code != 0 and "passphrase is wrong" in wrong.output
    assert not (tmp_path / "x").exists()

    new = tmp_path / "restored"
    r = CliRunner().invoke(
        main,
        ["restore", "--from", str(backup), "--data", str(new), "--passphrase-stdin"],
        input=passphrase + "\n",
        catch_exceptions=False,
    )
    assert r.exit_code == 0, r.output
    assert hmi("verify", "--data", str(new)).exit_code == 0
