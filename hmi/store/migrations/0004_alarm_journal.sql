-- Alarm journal (SUP-6): one chained row per alarm state transition (ISA-18.2), written by
-- hmi.store.alarm_journal. Process transitions carry actor_id 'system' or 'device:<name>';
-- operator actions carry the user, the terminal, the reason and the signature ids.
-- value and limit_value are text as shown to the operator (the chain has no float kind).

CREATE TABLE alarm_journal_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,          -- when the transition happened (this host's clock, UTC)
    alarm_id VARCHAR NOT NULL,        -- BR101.TEMP_PV.HH, BR101.HEATER_FAULT, COMM.PLC1, SYSTEM.<key>
    tag VARCHAR NOT NULL,             -- the tag, device:<name> or system:<key>
    alarm_kind VARCHAR NOT NULL,      -- analog, discrete, comm, system
    event VARCHAR NOT NULL,           -- activate, clear, acknowledge, shelve, ...
    from_state VARCHAR NOT NULL,
    to_state VARCHAR NOT NULL,
    value VARCHAR,
    limit_name VARCHAR,               -- HH, H, L, LL (analog only)
    limit_value VARCHAR,
    priority BIGINT NOT NULL,         -- 1 critical .. 4 low
    message VARCHAR,
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    comment VARCHAR,                  -- the operator's comment or reason
    signature_ids VARCHAR,            -- comma-separated esignatures.signature_id
    shelved_until TIMESTAMPTZ,
    digest BLOB NOT NULL
);

CREATE TRIGGER alarm_journal_records_no_update BEFORE UPDATE ON alarm_journal_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER alarm_journal_records_no_delete BEFORE DELETE ON alarm_journal_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA view (docs/qa-guide.md, docs/alarms.md).
CREATE VIEW alarm_journal AS
SELECT seq, ts, alarm_id, tag, alarm_kind, event, from_state, to_state, value, limit_name,
       limit_value, priority, message, actor_id, actor_name, terminal_id, source, comment,
       signature_ids, shelved_until, lower(hex(digest)) AS record_digest
FROM alarm_journal_records;
