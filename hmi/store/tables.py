"""The chained (insert-only) tables: one place that says which columns are hashed.

The writer encodes rows for the chain from these specs, builds Arrow batches
from them, and the verifier builds its SQL canonical form from them. Every
column except ``digest`` is covered, so changing any value is detected. A
test checks that these specs match the columns the migrations create.
"""

from __future__ import annotations

from dataclasses import dataclass

from hmi.core.audit import Kind

T, I, TS = Kind.TEXT, Kind.INT, Kind.TIMESTAMP  # noqa: E741


@dataclass(frozen=True)
class ChainedTable:
    name: str
    """The physical table; QA reads it through ``view``."""
    view: str
    columns: tuple[tuple[str, Kind], ...]
    """Hashed columns in canonical order; ``seq`` and ``ts`` always come first."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


def _chained(name: str, view: str, *columns: tuple[str, Kind]) -> ChainedTable:
    return ChainedTable(name, view, (("seq", I), ("ts", TS), *columns))


AUDIT = _chained(
    "audit_records",
    "audit_trail",
    ("actor_id", T),
    ("actor_name", T),
    ("terminal_id", T),
    ("source", T),
    ("action", T),
    ("target", T),
    ("old_value", T),
    ("new_value", T),
    ("units", T),
    ("reason", T),
    ("outcome", T),
    ("signature_ids", T),
    ("run_id", T),
    ("step", T),
    ("detail", T),
)

ESIGNATURES = _chained(
    "esignature_records",
    "esignatures",
    ("signature_id", T),
    ("signer_id", T),
    ("signer_name", T),
    ("meaning", T),
    ("reason", T),
    ("content", T),
    ("content_digest", T),
    ("terminal_id", T),
    ("source", T),
    ("auth_mode", T),
    ("session_id", T),
)

SECURITY = _chained(
    "security_event_records",
    "security_events",
    ("event", T),
    ("user_id", T),
    ("actor_id", T),
    ("terminal_id", T),
    ("source", T),
    ("session_id", T),
    ("detail", T),
)

QA_QUERIES = _chained(
    "qa_query_records",
    "qa_queries",
    ("actor_id", T),
    ("actor_name", T),
    ("terminal_id", T),
    ("source", T),
    ("sql_text", T),
    ("outcome", T),
    ("row_count", I),
    ("reason", T),
)

CHAINED_TABLES: dict[str, ChainedTable] = {
    t.name: t for t in (AUDIT, ESIGNATURES, SECURITY, QA_QUERIES)
}


def register(table: ChainedTable) -> ChainedTable:
    """Add a chained table defined by a later migration (alarm journal, captures, ...)."""
    CHAINED_TABLES[table.name] = table
    return table


# Tag history (migration 0002): one chained row per flushed batch of values; the values
# themselves are covered by the batch's SHA-256 (hmi.store.history).
HISTORY_BATCHES = register(
    _chained(
        "tag_history_batch_records",
        "tag_history_batches",
        ("first_time", TS),
        ("last_time", TS),
        ("row_count", I),
        ("lost_values", I),
        ("rows_sha256", Kind.BLOB),
        ("row_crc32", Kind.BLOB),
    )
)


# Camera captures (migration 0003): the image itself is a write-once file named by its
# SHA-256 (hmi.records.images); the row's sha256 and size tie the file to the chain.
CAPTURES = register(
    _chained(
        "capture_records",
        "captures",
        ("camera", T),
        ("camera_time", TS),
        ("sha256", Kind.BLOB),
        ("size", I),
        ("format", T),
        ("width", I),
        ("height", I),
        ("settings", T),
        ("actor_id", T),
        ("actor_name", T),
        ("terminal_id", T),
        ("signature_ids", T),
        ("run_id", T),
        ("step", T),
    )
)


# Alarm journal (migration 0004): every ISA-18.2 state transition (hmi.store.alarm_journal).
ALARM_JOURNAL = register(
    _chained(
        "alarm_journal_records",
        "alarm_journal",
        ("alarm_id", T),
        ("tag", T),
        ("alarm_kind", T),
        ("event", T),
        ("from_state", T),
        ("to_state", T),
        ("value", T),
        ("limit_name", T),
        ("limit_value", T),
        ("priority", I),
        ("message", T),
        ("actor_id", T),
        ("actor_name", T),
        ("terminal_id", T),
        ("source", T),
        ("comment", T),
        ("signature_ids", T),
        ("shelved_until", TS),
    )
)


# Procedure runs (migration 0005): every run state transition and every step event (data,
# signature, completion, refused attempt, overdue notice), chained like audit rows.
PROCEDURE_RUNS = register(
    _chained(
        "procedure_run_records",
        "procedure_runs",
        ("run_id", T),
        ("procedure_id", T),
        ("procedure_version", T),
        ("procedure_title", T),
        ("event", T),
        ("state_from", T),
        ("state_to", T),
        ("step_index", I),
        ("step_id", T),
        ("actor_id", T),
        ("actor_name", T),
        ("terminal_id", T),
        ("source", T),
        ("reason", T),
        ("signature_ids", T),
    )
)

STEP_EVENTS = register(
    _chained(
        "procedure_step_records",
        "step_events",
        ("run_id", T),
        ("procedure_id", T),
        ("step_index", I),
        ("step_id", T),
        ("step_title", T),
        ("event", T),
        ("outcome", T),
        ("action", T),
        ("field", T),
        ("value", T),
        ("meaning", T),
        ("signature_ids", T),
        ("reason", T),
        ("actor_id", T),
        ("actor_name", T),
        ("terminal_id", T),
        ("source", T),
    )
)


# Configuration versions (migration 0007): each version's text and every event of its life
# (proposed, each approval signature, approved, rejected), chained (hmi.store.config_versions).
CONFIG_VERSIONS = register(
    _chained(
        "config_version_records",
        "config_versions",
        ("version", I),
        ("event", T),
        ("base_version", I),
        ("restores_version", I),
        ("files_json", T),
        ("config_sha256", T),
        ("changed_files", T),
        ("diff", T),
        ("required", T),
        ("actor_id", T),
        ("actor_name", T),
        ("actor_role", T),
        ("terminal_id", T),
        ("source", T),
        ("reason", T),
        ("signature_ids", T),
        ("detail", T),
    )
)
