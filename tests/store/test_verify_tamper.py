"""REC-1: ``verify_data_dir`` detects records edited, deleted, inserted, reordered or
truncated directly in the database file, and swapped or missing keys and anchors.

Every test starts from a private copy of a filled, closed data directory and changes
it the way an attacker with file access would (the guard triggers are dropped first).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from hmi.core.audit import Kind
from hmi.store.anchors import parse_heads
from hmi.store.keys import HMAC_KEY_FILE, PUBLIC_KEY_FILE
from hmi.store.tables import AUDIT, CHAINED_TABLES
from hmi.store.verify import Problem, VerifyReport, verify_data_dir

Tamper = Callable[..., list[tuple[Any, ...]]]
Read = Callable[..., list[tuple[Any, ...]]]

TABLES = [pytest.param(name, id=name) for name in CHAINED_TABLES]
COLUMNS = [
    pytest.param(spec.name, column, id=f"{spec.name}.{column}")
    for spec in CHAINED_TABLES.values()
    for column in (*spec.column_names, "digest")
]


def where(report: VerifyReport) -> set[tuple[str, int | None]]:
    return {(p.table, p.seq) for p in report.problems}


def problems_at(report: VerifyReport, table: str, seq: int | None) -> list[Problem]:
    return [p for p in report.problems if p.table == table and p.seq == seq]


def failed(root: Path) -> VerifyReport:
    report = verify_data_dir(root)
    assert not report.ok
    assert report.summary().startswith("FAILED:")
    return report


def flip_last_byte(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 0x01])


# -- untouched ---------------------------------------------------------------------


def test_untouched_directory_verifies_with_counts(filled: Any, read: Read) -> None:
    report = verify_data_dir(filled.root)

    assert report.ok, [str(p) for p in report.problems]
    assert report.rows == filled.counts
    (checkpoints,) = read(filled.root, "SELECT count(*) FROM checkpoints")[0]
    anchor_lines = filled.root.joinpath("anchors.log").read_text().splitlines()
    # one checkpoint per e-signature, one more at close
    assert checkpoints == filled.counts["esignature_records"] + 1 == len(anchor_lines)
    assert report.checkpoints == checkpoints
    assert report.anchors == checkpoints
    total = sum(filled.counts.values())
    assert report.summary().startswith(
        f"OK: {total} records in {len(CHAINED_TABLES)} chains, {checkpoints} signed "
        f"checkpoints, {checkpoints} anchors verified, last checkpoint {checkpoints} at "
    )


# -- a changed value in each column ---------------------------------------------------


# the digest with its last hex digit changed
FLIP_DIGEST = (
    "unhex(left(hex(digest), 63) || CASE WHEN right(hex(digest), 1) = '0' THEN '1' ELSE '0' END)"
)


# per kind: a small change of a value, and a value for a NULL
CHANGE = {
    Kind.TEXT: "replace({c}, '-', '+')",
    Kind.INT: "{c} + 1",
    Kind.BOOL: "NOT {c}",
    Kind.TIMESTAMP: "{c} + INTERVAL 1 MICROSECOND",
    Kind.BLOB: "{c} || '\\x00'::BLOB",
}
FORGED = {
    Kind.TEXT: "'forged'",
    Kind.INT: "0",
    Kind.BOOL: "false",
    Kind.TIMESTAMP: "TIMESTAMPTZ '2026-01-05 08:00:00+00'",
    Kind.BLOB: "'\\x00'::BLOB",
}


@pytest.mark.parametrize(("table", "column"), COLUMNS)
def test_changed_value_in_each_column_is_detected(
    filled: Any, tamper: Tamper, table: str, column: str
) -> None:
    """Each kind of change goes to its own row, so each must be reported by itself:
    row 4 changed (text edited, int +1, timestamp +1 µs, digest digit changed),
    row 6 value→NULL, row 3 NULL→value (the fill leaves nullable columns NULL in odd rows
    and fills even rows). ``seq`` +1 is done on the last row, where it does not collide."""
    root, n = filled.root, filled.counts[table]
    kind = dict(CHAINED_TABLES[table].columns).get(column, Kind.BLOB)
    nullable = column in filled.nullable[table]

    if column == "seq":
        tamper(root, f"UPDATE {table} SET seq = seq + 1 WHERE seq = {n}")
        report = failed(root)
        # a gap before the moved row, its digest, and the checkpoint's missing head
        assert {p.seq for p in report.problems} == {n, n + 1}
        assert any(f"row {n} is missing" in p.message for p in problems_at(report, table, n + 1))
    elif column == "digest":
        before, after = tamper(
            root,
            [
                f"CREATE TEMP TABLE before AS SELECT digest FROM {table} WHERE seq = 4",
                f"UPDATE {table} SET digest = {FLIP_DIGEST} WHERE seq = 4",
                f"SELECT (SELECT digest FROM before), digest FROM {table} WHERE seq = 4",
            ],
        )[0]
        assert len(after) == len(before) == 32 and after != before
        report = failed(root)
        # the row itself, and the next row that chains from the stored digest
        assert {p.seq for p in report.problems} == {4, 5}
    else:
        rows = filled.rows[table]
        changed: dict[int, str] = {4: CHANGE[kind].format(c=column)}
        if kind is Kind.TEXT:
            assert "-" in str(rows[4 - 1][column])
        if nullable:
            assert rows[3 - 1][column] is None and rows[6 - 1][column] is not None
            changed[3] = FORGED[kind]
            changed[6] = "NULL"
        statements = [
            f"UPDATE {table} SET {column} = {expression} WHERE seq = {seq}"
            for seq, expression in changed.items()
        ]
        updated = tamper(
            root,
            [
                f"CREATE TEMP TABLE before AS SELECT seq, {column} AS v FROM {table}",
                *statements,
                f"SELECT count(*) FROM {table} JOIN before USING (seq) "
                f"WHERE {column} IS DISTINCT FROM v",
            ],
        )
        assert updated == [(len(changed),)]

        report = failed(root)
        assert {p.seq for p in report.problems} == set(changed)
        assert all("digest does not match" in p.message for p in report.problems)

    assert {p.table for p in report.problems} == {table}


# -- deleted, inserted and reordered rows ---------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_deleted_row_in_the_middle_is_detected(filled: Any, tamper: Tamper, table: str) -> None:
    tamper(filled.root, f"DELETE FROM {table} WHERE seq = 5")

    report = failed(filled.root)

    messages = [p.message for p in problems_at(report, table, 6)]
    assert any("row 5 is missing" in m for m in messages), messages
    assert any("digest does not match" in m for m in messages), messages
    assert {p.table for p in report.problems} == {table}


def test_inserted_row_with_forged_digest_is_detected(
    filled: Any, tamper: Tamper, read: Read
) -> None:
    table, n = AUDIT.name, filled.counts[AUDIT.name]
    tamper(
        filled.root,
        f"INSERT INTO {table} (seq, ts, action, outcome, reason, digest) "
        "VALUES (?, now(), 'setpoint', 'ok', 'backdated', ?)",
        [n + 1, secrets.token_bytes(32)],
    )
    assert read(filled.root, f"SELECT max(seq) FROM {table}") == [(n + 1,)]

    report = failed(filled.root)

    assert [p.message for p in problems_at(report, table, n + 1)] == [
        "digest does not match: the row was altered, inserted, or the row before it was removed"
    ]
    assert where(report) == {(table, n + 1)}


def test_row_inserted_in_the_middle_is_detected(filled: Any, tamper: Tamper) -> None:
    table = AUDIT.name
    tamper(
        filled.root,
        [
            f"UPDATE {table} SET seq = seq + 1 WHERE seq >= 5",
            f"INSERT INTO {table} (seq, ts, action, outcome, digest) "
            f"SELECT 5, ts + INTERVAL 1 SECOND, 'forged', 'ok', digest FROM {table} WHERE seq = 4",
        ],
    )

    report = failed(filled.root)

    assert any("digest does not match" in p.message for p in problems_at(report, table, 5))
    assert {p.table for p in report.problems} == {table}


@pytest.mark.parametrize("table", TABLES)
def test_copy_of_a_row_with_a_new_seq_is_detected(filled: Any, tamper: Tamper, table: str) -> None:
    n = filled.counts[table]
    unique = ", signature_id || '-copy' AS signature_id" if table == "esignature_records" else ""
    tamper(
        filled.root,
        f"INSERT INTO {table} SELECT * REPLACE ({n + 1} AS seq{unique}) FROM {table} WHERE seq = 3",
    )

    report = failed(filled.root)

    assert where(report) == {(table, n + 1)}


def test_exact_duplicate_row_is_detected(filled: Any, tamper: Tamper) -> None:
    """The primary key is dropped by rebuilding the table, then a row is copied as it is."""
    table = AUDIT.name
    tamper(
        filled.root,
        [
            f"CREATE TABLE rebuilt AS SELECT * FROM {table}",
            f"DROP TABLE {table}",
            f"ALTER TABLE rebuilt RENAME TO {table}",
            f"INSERT INTO {table} SELECT * FROM {table} WHERE seq = 5",
        ],
    )

    report = failed(filled.root)

    assert where(report) == {(table, 5)}
    assert "sequence number appears twice (row inserted)" in [p.message for p in report.problems]


def test_swapped_seqs_are_detected(filled: Any, tamper: Tamper) -> None:
    table = AUDIT.name
    tamper(
        filled.root,
        f"UPDATE {table} SET seq = CASE seq WHEN 3 THEN 5 ELSE 3 END WHERE seq IN (3, 5)",
    )

    report = failed(filled.root)

    assert {(table, 3), (table, 5)} <= where(report)
    assert {p.table for p in report.problems} == {table}


def test_physical_order_does_not_matter_but_seq_order_does(
    filled: Any, tamper: Tamper, read: Read
) -> None:
    table = AUDIT.name
    n = filled.counts[table]
    tamper(
        filled.root,
        [
            f"CREATE TEMP TABLE shuffled AS SELECT * FROM {table} ORDER BY random()",
            f"DELETE FROM {table}",
            f"INSERT INTO {table} SELECT * FROM shuffled",
        ],
    )
    physical = [seq for (seq,) in read(filled.root, f"SELECT seq FROM {table}")]
    assert sorted(physical) == list(range(1, n + 1))
    assert physical != sorted(physical), "the rewrite should change the physical order"

    report = verify_data_dir(filled.root)
    assert report.ok, [str(p) for p in report.problems]

    tamper(
        filled.root,
        f"UPDATE {table} SET seq = CASE seq WHEN 7 THEN 8 ELSE 7 END WHERE seq IN (7, 8)",
    )
    report = failed(filled.root)
    assert {(table, 7), (table, 8)} <= where(report)


# -- truncation -----------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
def test_rows_deleted_from_the_end_are_detected_by_the_checkpoint(
    filled: Any, tamper: Tamper, table: str
) -> None:
    n = filled.counts[table]
    tamper(filled.root, f"DELETE FROM {table} WHERE seq > {n - 2}")

    report = failed(filled.root)

    messages = [p.message for p in problems_at(report, table, n)]
    assert messages and all("truncated?" in m for m in messages), messages
    assert f"records end at seq {n - 2}" in messages[0]
    assert {p.table for p in report.problems} == {table}


def _checkpoints_vouching_beyond(root: Path, read: Read, table: str, last_kept: int) -> list[int]:
    rows = read(root, "SELECT seq, heads FROM checkpoints ORDER BY seq")
    return [seq for seq, heads in rows if parse_heads(heads).get(table, (0, ""))[0] > last_kept]


@pytest.mark.parametrize("table", TABLES)
def test_truncation_with_its_checkpoints_deleted_is_detected_by_anchors_log(
    filled: Any, tamper: Tamper, read: Read, table: str
) -> None:
    n = filled.counts[table]
    doomed = _checkpoints_vouching_beyond(filled.root, read, table, n - 2)
    assert doomed
    tamper(
        filled.root,
        [
            f"DELETE FROM {table} WHERE seq > {n - 2}",
            f"DELETE FROM checkpoints WHERE seq IN ({', '.join(map(str, doomed))})",
        ],
    )
    # the database alone is now consistent: no remaining checkpoint vouches for the rows
    assert _checkpoints_vouching_beyond(filled.root, read, table, n - 2) == []

    report = failed(filled.root)

    for seq in doomed:
        assert any(
            "in anchors.log but missing from the database" in p.message
            for p in problems_at(report, "checkpoints", seq)
        )
    assert any("truncated?" in p.message for p in problems_at(report, table, n))
    assert {p.table for p in report.problems} == {table, "checkpoints"}


def test_truncation_with_all_checkpoints_deleted_is_detected(filled: Any, tamper: Tamper) -> None:
    table, n = AUDIT.name, filled.counts[AUDIT.name]
    tamper(filled.root, [f"DELETE FROM {table} WHERE seq > 3", "DELETE FROM checkpoints"])

    report = failed(filled.root)

    assert any("truncated?" in p.message for p in problems_at(report, table, n))


# -- keys -------------------------------------------------------------------------------


@pytest.mark.parametrize("key_file", [HMAC_KEY_FILE, PUBLIC_KEY_FILE])
def test_missing_key_file_is_reported(filled: Any, key_file: str) -> None:
    (filled.root / "keys" / key_file).unlink()

    report = failed(filled.root)

    keys = problems_at(report, "keys", None)
    assert len(keys) == 1
    assert key_file in keys[0].message and "missing" in keys[0].message
    # the chains are still read (and checked for gaps)
    assert report.rows == filled.counts


def test_missing_hmac_key_still_finds_a_gap(filled: Any, tamper: Tamper) -> None:
    (filled.root / "keys" / HMAC_KEY_FILE).unlink()
    tamper(filled.root, f"DELETE FROM {AUDIT.name} WHERE seq = 5")

    report = failed(filled.root)

    assert any("row 5 is missing" in p.message for p in problems_at(report, AUDIT.name, 6))


def _write_other_hmac_key(root: Path) -> bytes:
    key = secrets.token_bytes(32)
    (root / "keys" / HMAC_KEY_FILE).write_text(key.hex() + "\n")
    return key


def _write_other_public_key(root: Path) -> Ed25519PrivateKey:
    other = Ed25519PrivateKey.generate()
    (root / "keys" / PUBLIC_KEY_FILE).write_bytes(
        other.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return other


def test_swapped_hmac_key_is_reported(filled: Any) -> None:
    _write_other_hmac_key(filled.root)

    report = failed(filled.root)

    assert [p.message for p in problems_at(report, "keys", None)] == [
        "the HMAC key is not the key these records were written with (swapped key?); "
        "chains can only be checked for gaps"
    ]


def test_swapped_hmac_key_with_forged_key_check_fails_every_chain(
    filled: Any, tamper: Tamper
) -> None:
    from hmi.core.audit import key_check

    key = _write_other_hmac_key(filled.root)
    tamper(
        filled.root,
        "UPDATE schema_meta SET value = ? WHERE key = 'hmac_key_check'",
        [key_check(key)],
    )

    report = failed(filled.root)

    for table in CHAINED_TABLES:
        assert any("digest does not match" in p.message for p in problems_at(report, table, 1))


def test_swapped_public_key_is_reported(filled: Any) -> None:
    _write_other_public_key(filled.root)

    report = failed(filled.root)

    keys = problems_at(report, "keys", None)
    assert len(keys) == 1
    assert PUBLIC_KEY_FILE in keys[0].message
    assert "not the key these checkpoints were signed with" in keys[0].message


def test_swapped_public_key_with_forged_key_id_fails_every_checkpoint(
    filled: Any, tamper: Tamper, read: Read
) -> None:
    from hmi.store.keys import public_key_id

    other = _write_other_public_key(filled.root)
    tamper(
        filled.root,
        "UPDATE schema_meta SET value = ? WHERE key = 'checkpoint_key_id'",
        [public_key_id(other.public_key())],
    )
    seqs = [seq for (seq,) in read(filled.root, "SELECT seq FROM checkpoints ORDER BY seq")]

    report = failed(filled.root)

    for seq in seqs:
        assert any(
            "signature does not verify" in p.message
            for p in problems_at(report, "checkpoints", seq)
        )
        assert any(
            "anchor signature does not verify" in p.message
            for p in problems_at(report, "anchors.log", seq)
        )


# -- checkpoints and anchors.log ----------------------------------------------------------


def test_tampered_checkpoint_signature_is_detected(filled: Any, tamper: Tamper, read: Read) -> None:
    (signature,) = read(filled.root, "SELECT signature FROM checkpoints WHERE seq = 4")[0]
    tamper(
        filled.root,
        "UPDATE checkpoints SET signature = ? WHERE seq = 4",
        [flip_last_byte(signature)],
    )

    report = failed(filled.root)

    messages = [p.message for p in problems_at(report, "checkpoints", 4)]
    assert "signature does not verify with the public key" in messages
    assert "checkpoint differs from its copy in anchors.log" in messages
    assert where(report) == {("checkpoints", 4)}


def test_tampered_checkpoint_heads_are_detected(filled: Any, tamper: Tamper) -> None:
    """Moving a checkpoint's head back (to hide later rows) breaks its signature."""
    tamper(
        filled.root,
        "UPDATE checkpoints SET heads = regexp_replace(heads, 'audit_records:(\\d+):', "
        "'audit_records:1:') WHERE seq = 5",
    )

    report = failed(filled.root)

    assert "signature does not verify with the public key" in [
        p.message for p in problems_at(report, "checkpoints", 5)
    ]


def _anchor_lines(root: Path) -> list[str]:
    return (root / "anchors.log").read_text().splitlines()


def _write_anchor_lines(root: Path, lines: list[str]) -> None:
    (root / "anchors.log").write_text("".join(line + "\n" for line in lines))


def test_edited_anchor_line_is_detected(filled: Any) -> None:
    lines = _anchor_lines(filled.root)
    entry = json.loads(lines[2])
    name, (seq, digest) = next(iter(parse_heads(entry["heads"]).items()))
    forged_digest = ("0" if digest[0] != "0" else "1") + digest[1:]
    entry["heads"] = entry["heads"].replace(
        f"{name}:{seq}:{digest}", f"{name}:{seq}:{forged_digest}"
    )
    lines[2] = json.dumps(entry, sort_keys=True)
    _write_anchor_lines(filled.root, lines)

    report = failed(filled.root)

    assert where(report) == {("anchors.log", entry["seq"])}
    assert report.problems[0].message == "anchor signature does not verify"


def test_garbled_anchor_line_is_detected(filled: Any) -> None:
    lines = _anchor_lines(filled.root)
    lines[1] = lines[1][: len(lines[1]) // 2]
    _write_anchor_lines(filled.root, lines)

    report = failed(filled.root)

    assert where(report) == {("anchors.log", 2)}
    assert "line 2 is not a checkpoint" in report.problems[0].message


def test_deleted_anchors_log_is_detected(filled: Any) -> None:
    (filled.root / "anchors.log").unlink()

    report = failed(filled.root)

    assert {p.table for p in report.problems} == {"anchors.log"}
    assert any("missing" in p.message for p in report.problems)


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(lambda lines: lines[:3] + lines[4:], id="middle-line-deleted"),
        pytest.param(lambda lines: lines[:-1], id="last-line-deleted"),
        pytest.param(lambda lines: [], id="emptied"),
    ],
)
def test_deleted_anchor_line_is_detected(
    filled: Any, keep: Callable[[list[str]], list[str]]
) -> None:
    lines = _anchor_lines(filled.root)
    kept = keep(lines)
    removed = {json.loads(line)["seq"] for line in lines if line not in kept}
    _write_anchor_lines(filled.root, kept)

    report = failed(filled.root)

    assert where(report) == {("anchors.log", seq) for seq in removed}
    assert all("no copy in anchors.log" in p.message for p in report.problems)
