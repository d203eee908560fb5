-- Configuration change control (SUP-12, 11.10(k)): every configuration version and every
-- event in its life, chained like audit rows. A version is the whole configuration set
-- (file name → text); its 'proposed' (or 'baseline') row holds that set as canonical JSON
-- with its SHA-256 and the diff against the approved version it was based on. Later rows
-- of the same version record each approval signature, the rejection, or the approval that
-- made it the running configuration. Signatures are esignature_records rows named by
-- signature_ids (comma-separated).

CREATE TABLE config_version_records (
    seq BIGINT PRIMARY KEY,
    ts TIMESTAMPTZ NOT NULL,
    version BIGINT NOT NULL,
    event VARCHAR NOT NULL,           -- baseline, proposed, signed, approved, rejected
    base_version BIGINT,              -- the approved version this one was compared with
    restores_version BIGINT,          -- for a rollback: the version whose text it restores
    files_json VARCHAR,               -- proposed/baseline: {file name: text}, canonical JSON
    config_sha256 VARCHAR,            -- SHA-256 of files_json (every row of the version)
    changed_files VARCHAR,            -- proposed: file names that differ from base_version
    diff VARCHAR,                     -- proposed: unified diff against base_version
    required VARCHAR,                 -- proposed: roles whose approval is needed (e.g. 'qa,admin')
    actor_id VARCHAR,
    actor_name VARCHAR,
    actor_role VARCHAR,               -- signed: the role the approver signed for
    terminal_id VARCHAR,
    source VARCHAR,
    reason VARCHAR,
    signature_ids VARCHAR,
    detail VARCHAR,
    digest BLOB NOT NULL
);

CREATE TRIGGER config_version_records_no_update BEFORE UPDATE ON config_version_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);
CREATE TRIGGER config_version_records_no_delete BEFORE DELETE ON config_version_records FOR EACH STATEMENT INSERT INTO guard_refusals VALUES (1);

-- QA view (docs/qa-guide.md).
CREATE VIEW config_versions AS
SELECT seq, ts, version, event, base_version, restores_version, config_sha256, changed_files,
       diff, required, actor_id, actor_name, actor_role, terminal_id, source, reason,
       signature_ids, detail, files_json, lower(hex(digest)) AS record_digest
FROM config_version_records;
