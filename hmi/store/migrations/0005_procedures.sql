-- Procedure runs and their steps (SUP-7, 11.10(f)): every run state transition, and every
-- step event (started, data entered, signed, completed, refused attempt, overdue notice),
-- each a chained row like an audit row. Signatures themselves are esignature_records rows;
-- signature_ids names them (comma-separated).

CREATE TABLE procedure_run_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    run_id VARCHAR NOT NULL,
    procedure_id VARCHAR NOT NULL,
    procedure_version VARCHAR NOT NULL,
    procedure_title VARCHAR NOT NULL,
    event VARCHAR NOT NULL,           -- created, started, held, restarted, aborted, completed
    state_from VARCHAR,               -- idle, running, held (NULL when created)
    state_to VARCHAR NOT NULL,        -- idle, running, held, complete, aborted
    step_index BIGINT NOT NULL,       -- 0-based; people count from 1
    step_id VARCHAR NOT NULL,
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    reason VARCHAR,
    signature_ids VARCHAR,
    digest BLOB NOT NULL
);

CREATE TABLE procedure_step_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    run_id VARCHAR NOT NULL,
    procedure_id VARCHAR NOT NULL,
    step_index BIGINT NOT NULL,
    step_id VARCHAR NOT NULL,
    step_title VARCHAR NOT NULL,
    event VARCHAR NOT NULL,           -- started, data, signed, completed, refused, overdue
    outcome VARCHAR NOT NULL,         -- done or refused
    action VARCHAR,                   -- for a refusal: what was attempted (e.g. capture:MIC1.CAM)
    field VARCHAR,                    -- for data: the field's name
    value VARCHAR,                    -- for data: the value as recorded
    meaning VARCHAR,                  -- for a signature: its meaning
    signature_ids VARCHAR,
    reason VARCHAR,                   -- why refused; the overdue notice's text
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    digest BLOB NOT NULL
);

CREATE TRIGGER procedure_run_records_no_update BEFORE UPDATE ON procedure_run_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER procedure_run_records_no_delete BEFORE DELETE ON procedure_run_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER procedure_step_records_no_update BEFORE UPDATE ON procedure_step_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER procedure_step_records_no_delete BEFORE DELETE ON procedure_step_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA views (docs/qa-guide.md): step numbers as people count them (from 1).
CREATE VIEW procedure_runs AS
SELECT seq, ts, run_id, procedure_id, procedure_version, procedure_title, event, state_from,
       state_to, step_index + 1 AS step_number, step_id, actor_id, actor_name, terminal_id,
       source, reason, signature_ids, lower(hex(digest)) AS record_digest
FROM procedure_run_records;

CREATE VIEW step_events AS
SELECT seq, ts, run_id, procedure_id, step_index + 1 AS step_number, step_id, step_title, event,
       outcome, action, field, value, meaning, signature_ids, reason, actor_id, actor_name,
       terminal_id, source, lower(hex(digest)) AS record_digest
FROM procedure_step_records;
