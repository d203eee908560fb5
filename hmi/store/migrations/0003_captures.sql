-- Camera captures (SUP-3): one chained row per image stored under DATA/images/<sha256>.<ext>.
-- The row holds the image's SHA-256 and size, so verify can check the write-once file
-- against the record, and the chain covers the row like any audit row.
-- actor_*, terminal_id, signature_ids, run_id and step are filled by the command service.

CREATE TABLE capture_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,          -- when the capture was recorded (this host's clock)
    camera VARCHAR NOT NULL,
    camera_time TIMESTAMPTZ,          -- the camera's own time of the picture, if it gives one
    sha256 BLOB NOT NULL,             -- 32 bytes; the file is images/<hex>.<format>
    size BIGINT NOT NULL,             -- bytes
    format VARCHAR NOT NULL,          -- png or tiff
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    settings VARCHAR NOT NULL,        -- canonical JSON
    actor_id VARCHAR,
    actor_name VARCHAR,
    terminal_id VARCHAR,
    signature_ids VARCHAR,
    run_id VARCHAR,
    step VARCHAR,
    digest BLOB NOT NULL
);

CREATE TRIGGER capture_records_no_update BEFORE UPDATE ON capture_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER capture_records_no_delete BEFORE DELETE ON capture_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA view (docs/cameras.md): image_file is the path below the data directory.
CREATE VIEW captures AS
SELECT seq, ts, camera, camera_time, lower(hex(sha256)) AS sha256, size AS size_bytes, format,
       width, height, settings, actor_id, actor_name, terminal_id, signature_ids, run_id, step,
       'images/' || lower(hex(sha256)) || '.' || format AS image_file,
       lower(hex(digest)) AS record_digest
FROM capture_records;
