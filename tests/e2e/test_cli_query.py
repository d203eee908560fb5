"""`hmi query`: read-only, views only, capped, and every attempt recorded (SUP-11, REC-4)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner
from custos_testkit import write_config

from hmi.cli import main

TEMP = "FirstTemp42"
ADMIN_PW = "Admin-Real-7"
QA_PW = "Quality-Pw-8"


def hmi(*args: str, stdin: str | None = None):
    return CliRunner().invoke(main, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture(scope="module")
def plant(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("q")
    cfg = write_config(root / "cfg")
    d = root / "data"
    (root / "pw").write_text(TEMP)
    base = ("--data", str(d), "--config", str(cfg))
    assert (
        hmi(
            "init",
            *base,
            "--admin",
            "root1",
            "--admin-name",
            "Rita Root",
            "--admin-password-file",
            str(root / "pw"),
        ).exit_code
        == 0
    )
    assert (
        hmi(
            "passwd", *base, "--user", "root1", "--password-stdin", stdin=f"{TEMP}\n{ADMIN_PW}\n"
        ).exit_code
        == 0
    )
    r = hmi(
        "users",
        "add",
        *base,
        "--user",
        "root1",
        "--password-stdin",
        "quinn",
        "--name",
        "Quinn QA",
        "--role",
        "qa",
        "--reason",
        "QA reviewer",
        stdin=ADMIN_PW + "\n",
    )
    temp = re.search(r"first login\): (\S+)", r.output).group(1)
    assert (
        hmi(
            "passwd", *base, "--user", "quinn", "--password-stdin", stdin=f"{temp}\n{QA_PW}\n"
        ).exit_code
        == 0
    )
    return d, cfg


def q(plant, sql: str, *extra: str, user: str = "quinn", pw: str = QA_PW):
    d, cfg = plant
    return hmi(
        "query",
        "--data",
        str(d),
        "--config",
        str(cfg),
        "--user",
        user,
        "--password-stdin",
        *extra,
        sql,
        stdin=pw + "\n",
    )


def recorded(plant) -> list[tuple]:
    con = duckdb.connect(str(plant[0] / "hmi.duckdb"), read_only=True)
    try:
        return con.execute(
            "SELECT actor_id, outcome, sql_text, row_count, reason FROM qa_queries ORDER BY seq"
        ).fetchall()
    finally:
        con.close()


def test_a_read_query_runs_and_is_recorded_with_author_and_row_count(plant):
    r = q(plant, "SELECT user_id, full_name FROM users ORDER BY user_id", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert rows == [
        {"user_id": "quinn", "full_name": "Quinn QA"},
        {"user_id": "root1", "full_name": "Rita Root"},
    ]
    last = recorded(plant)[-1]
    assert last[:2] == ("quinn", "ok") and last[3] == 2


def test_csv_and_table_formats_and_row_cap(plant):
    r = q(
        plant,
        "SELECT seq, action FROM audit_trail ORDER BY seq",
        "--format",
        "csv",
        "--max-rows",
        "2",
    )
    assert r.exit_code == 0
    assert r.stdout.splitlines()[0] == "seq,action" and len(r.stdout.splitlines()) == 3
    assert "truncated" in r.stderr
    r = q(plant, "SELECT count(*) AS n FROM security_events")
    assert r.exit_code == 0 and r.stdout.splitlines()[0].strip() == "n"


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("DELETE FROM audit_trail", "DELETE"),
        ("UPDATE users SET locked = false", "UPDATE"),
        ("COPY audit_records TO 'x.csv'", "COPY"),
        ("ATTACH 'other.duckdb'", "ATTACH"),
        ("SELECT * FROM audit_records", "audit_records"),
        ("SELECT * FROM password_hashes", "password_hashes"),
        ("SELECT * FROM read_text('keys/hmac.key')", "read_text"),
        ("SELECT content FROM read_blob('{data}/keys/checkpoint-signing.key')", "read_blob"),
        ("SELECT * FROM '{data}/keys/hmac.key'", "keys/hmac.key"),
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv"),
        ("SELECT * FROM glob('{data}/keys/*')", "glob"),
        ("SELECT getenv('HOME')", "getenv"),
        ("SELECT 1; SELECT 2", "one"),
    ],
)
def test_writes_and_reads_beyond_the_records_are_refused_and_recorded(plant, sql, says):
    sql = sql.format(data=plant[0])
    r = q(plant, sql)
    assert r.exit_code == 1, r.output
    assert "Query refused" in r.output and says.lower() in r.output.lower()
    assert "hmac" not in r.stdout.lower() and r.stdout.strip() == ""
    last = recorded(plant)[-1]
    assert last[0] == "quinn" and last[1] == "refused" and last[2] == sql


def test_non_qa_users_cannot_query_and_the_attempt_is_recorded(plant):
    r = q(plant, "SELECT 1 AS one FROM users", user="root1", pw=ADMIN_PW)
    assert r.exit_code == 1 and "may not query records" in r.output
    assert recorded(plant)[-1][:2] == ("root1", "refused")


def test_the_sql_examples_of_every_guide_run(plant):
    docs = Path(__file__).parents[2] / "docs"
    examples = [
        (page.name, sql)
        for page in sorted(docs.rglob("*.md"))
        for sql in re.findall(r"```sql\n(.*?)```", page.read_text(), flags=re.S)
    ]
    assert len([e for e in examples if e[0] == "qa-guide.md"]) >= 5
    for page, sql in examples:
        r = q(plant, sql.strip().rstrip(";"))
        assert r.exit_code == 0, (page, sql, r.output)
