-- Executions and successes per workflow and artifact version, each workflow's versions in the
-- order they were first used: a restarted manager rebuilds the regression rule's counts. Read
-- from the per-output rollups compaction writes (plus the live JSONL), never a full scan.
SELECT workflow_id, artifact_version,
       sum(executions)::BIGINT AS executions,
       sum(successes)::BIGINT AS successes
FROM audit_version_rollup
GROUP BY ALL
ORDER BY workflow_id, min(first_key)
