-- Tag history (SUP-5): a row per logged value change, written in batches.
-- The rows themselves are not chained one by one (that would cost an HMAC and a
-- sequence per sample); each flushed batch is a chained row that holds the SHA-256 of
-- its rows in canonical form (hmi/store/history.py), so a changed, deleted or inserted
-- value is detected through the batch, and the batch through the chain and checkpoints.

-- No primary key: an index would slow every batch insert, and verify finds a
-- duplicated (batch_seq, idx) anyway.
CREATE TABLE tag_history_values (
    batch_seq BIGINT NOT NULL,       -- the chained batch this value was written in
    idx INTEGER NOT NULL,            -- position in the batch, 0..row_count-1
    tag VARCHAR NOT NULL,
    source_time TIMESTAMPTZ,         -- the device's timestamp, when it gives one
    server_time TIMESTAMPTZ NOT NULL,
    value_num DOUBLE,                -- numbers; booleans as 1/0
    value_text VARCHAR,              -- text; 'true'/'false' for booleans; the exact
                                     -- decimal of an integer a DOUBLE cannot hold
    quality VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    actor VARCHAR NOT NULL,          -- device:<name>, a user ID, or system:history
    unattributed BOOLEAN NOT NULL    -- a writable tag changed without a command of ours
);

CREATE TABLE tag_history_batch_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    first_time TIMESTAMPTZ NOT NULL,  -- earliest server_time in the batch
    last_time TIMESTAMPTZ NOT NULL,   -- latest server_time in the batch
    row_count BIGINT NOT NULL,
    lost_values BIGINT NOT NULL,      -- values not recorded since the previous batch
    rows_sha256 BLOB NOT NULL,        -- SHA-256 of the canonical rows joined by '\n', by idx
    row_crc32 BLOB NOT NULL,          -- CRC-32 of each row (4 bytes LE), by idx: names a changed row
    digest BLOB NOT NULL
);

CREATE TRIGGER tag_history_values_no_update BEFORE UPDATE ON tag_history_values FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER tag_history_values_no_delete BEFORE DELETE ON tag_history_values FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER tag_history_batch_records_no_update BEFORE UPDATE ON tag_history_batch_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER tag_history_batch_records_no_delete BEFORE DELETE ON tag_history_batch_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA views (docs/qa-guide.md). actor_id is the user whose command wrote the value
-- (NULL for values from the process); device is set for values from the process.
CREATE VIEW tag_history AS
SELECT server_time AS time, source_time, tag, value_num AS value, value_text, quality, reason,
       CASE WHEN starts_with(actor, 'device:') OR starts_with(actor, 'system:') THEN NULL
            ELSE actor END AS actor_id,
       CASE WHEN starts_with(actor, 'device:') THEN substr(actor, 8) END AS device,
       unattributed, actor, batch_seq, idx
FROM tag_history_values;

CREATE VIEW tag_history_batches AS
SELECT seq, ts, first_time, last_time, row_count, lost_values,
       lower(hex(rows_sha256)) AS rows_sha256, lower(hex(digest)) AS record_digest
FROM tag_history_batch_records;
