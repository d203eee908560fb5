-- Foundation: regulated records (insert-only, chained), identity, sessions, notifications.
-- Each chained table: gap-free seq, UTC ts, fields, digest = HMAC(key, prev || canonical row).

CREATE TABLE guard_refusals (
    attempted INTEGER CHECK (attempted <> attempted)  -- always false: any insert fails
);

CREATE TABLE audit_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    action VARCHAR NOT NULL,
    target VARCHAR,
    old_value VARCHAR,
    new_value VARCHAR,
    units VARCHAR,
    reason VARCHAR,
    outcome VARCHAR NOT NULL,
    signature_ids VARCHAR,
    run_id VARCHAR,
    step VARCHAR,
    detail VARCHAR,
    digest BLOB NOT NULL
);

CREATE TABLE esignature_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    signature_id VARCHAR NOT NULL UNIQUE,
    signer_id VARCHAR NOT NULL,
    signer_name VARCHAR NOT NULL,
    meaning VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    content_digest VARCHAR NOT NULL,
    terminal_id VARCHAR,
    source VARCHAR,
    auth_mode VARCHAR NOT NULL,
    session_id VARCHAR,
    digest BLOB NOT NULL
);

CREATE TABLE security_event_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    event VARCHAR NOT NULL,
    user_id VARCHAR,
    actor_id VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    session_id VARCHAR,
    detail VARCHAR,
    digest BLOB NOT NULL
);

CREATE TABLE qa_query_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    source VARCHAR,
    sql_text VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    row_count BIGINT,
    reason VARCHAR,
    digest BLOB NOT NULL
);

-- Ed25519-signed checkpoints over every chain head; copied to anchors.log.
CREATE TABLE checkpoints (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    heads VARCHAR NOT NULL,
    key_id VARCHAR NOT NULL,
    signature BLOB NOT NULL
);

-- Accounts: mutable state, every change audited; never deleted.
CREATE TABLE user_accounts (
    user_id VARCHAR PRIMARY KEY,
    full_name VARCHAR NOT NULL UNIQUE,
    roles VARCHAR NOT NULL,
    active BOOLEAN NOT NULL DEFAULT TRUE,
    locked BOOLEAN NOT NULL DEFAULT FALSE,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    must_change_password BOOLEAN NOT NULL DEFAULT TRUE,
    password_changed_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR NOT NULL,
    deactivated_at TIMESTAMPTZ
);

-- Every password a user has had (argon2id hashes only): the newest is current,
-- the others enforce the history rule. Insert-only.
CREATE TABLE password_hashes (
    user_id VARCHAR NOT NULL,
    n INTEGER NOT NULL,
    hash VARCHAR NOT NULL,
    set_at TIMESTAMPTZ NOT NULL,
    temporary BOOLEAN NOT NULL,
    PRIMARY KEY (user_id, n)
);

CREATE TABLE sessions (
    session_id VARCHAR PRIMARY KEY,
    user_id VARCHAR NOT NULL,
    terminal_id VARCHAR NOT NULL,
    source VARCHAR,
    started_at TIMESTAMPTZ NOT NULL,
    last_activity TIMESTAMPTZ NOT NULL,
    last_full_auth TIMESTAMPTZ,
    signed_in_session BOOLEAN NOT NULL DEFAULT FALSE,
    ended_at TIMESTAMPTZ,
    end_reason VARCHAR
);

CREATE TABLE notifications (
    id BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    audience VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    subject VARCHAR,
    acknowledged_by VARCHAR,
    acknowledged_at TIMESTAMPTZ
);

-- Guards against mistakes (the chain, not these, is what detects an attacker).
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER esignature_records_no_update BEFORE UPDATE ON esignature_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER esignature_records_no_delete BEFORE DELETE ON esignature_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER security_event_records_no_update BEFORE UPDATE ON security_event_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER security_event_records_no_delete BEFORE DELETE ON security_event_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER qa_query_records_no_update BEFORE UPDATE ON qa_query_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER qa_query_records_no_delete BEFORE DELETE ON qa_query_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER password_hashes_no_update BEFORE UPDATE ON password_hashes FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER password_hashes_no_delete BEFORE DELETE ON password_hashes FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER user_accounts_no_delete BEFORE DELETE ON user_accounts FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER sessions_no_delete BEFORE DELETE ON sessions FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA views: the documented, stable interface (docs/qa-guide.md).
CREATE VIEW audit_trail AS
SELECT seq, ts, actor_id, actor_name, terminal_id, source AS source_address, action, target,
       old_value, new_value, units, reason, outcome, signature_ids, run_id, step, detail,
       lower(hex(digest)) AS record_digest
FROM audit_records;

CREATE VIEW esignatures AS
SELECT seq, signature_id, ts AS signed_at, signer_id, signer_name, meaning, reason,
       content AS signed_content, content_digest, terminal_id, source AS source_address,
       auth_mode, session_id, lower(hex(digest)) AS record_digest
FROM esignature_records;

CREATE VIEW security_events AS
SELECT seq, ts, event, user_id, actor_id, terminal_id, source AS source_address, session_id,
       detail, lower(hex(digest)) AS record_digest
FROM security_event_records;

CREATE VIEW qa_queries AS
SELECT seq, ts, actor_id, actor_name, terminal_id, source AS source_address, sql_text, outcome,
       row_count, reason, lower(hex(digest)) AS record_digest
FROM qa_query_records;

CREATE VIEW users AS
SELECT user_id, full_name, roles, active, locked, failed_attempts, must_change_password,
       password_changed_at, created_at, created_by, deactivated_at
FROM user_accounts;
