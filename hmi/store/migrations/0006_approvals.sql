-- Approval queue (SUP-8): requests for a second signature, decisions and expiries.
-- Each event is an audit row (chained with the audit trail) whose action starts with
-- 'approval_' and whose detail begins 'approval <id>'; this QA view gathers them per request.
-- The write that follows an approval is the requester's write_setpoint / operate_equipment
-- row in audit_trail, carrying both signatures.

CREATE VIEW approvals AS
SELECT seq, ts,
       regexp_extract(detail, '^approval ([0-9a-f]+)', 1) AS approval_id,
       substr(action, 10) AS event,
       actor_id, actor_name, terminal_id, source AS source_address,
       target, old_value, new_value, units, reason, outcome, signature_ids, run_id, step,
       detail,
       lower(hex(digest)) AS record_digest
FROM audit_records
WHERE action LIKE 'approval\_%' ESCAPE '\';
