-- Executions and successes per workflow and artifact version, each workflow's versions in the
-- order the state machine compares them: by their last activation for that workflow (a
-- rollback re-activates the known-good set, which makes it the active one again). A global
-- activation (no workflow_id) counts for a workflow from the workflow's first record on, plus
-- the last one before it (the set the workflow started with). The regression rule compares
-- the last two rows of a workflow; a warm restart rebuilds its counts from the same rows.
-- Reads the per-output rollups and the small event view, never a full scan of the results.
-- param workflow_id text = *: the workflow to show (* for every workflow)
WITH counts AS (
    SELECT workflow_id, artifact_version, min(first_key) AS first_key,
           sum(executions)::BIGINT AS executions, sum(successes)::BIGINT AS successes
    FROM audit_version_rollup
    WHERE $workflow_id = '*' OR workflow_id = $workflow_id
    GROUP BY ALL
), own AS (
    SELECT workflow_id, artifact_version, {'ts': ts, 'seq': seq} AS key
    FROM audit_events
    WHERE kind = 'activation' AND workflow_id IS NOT NULL AND artifact_version IS NOT NULL
      AND ($workflow_id = '*' OR workflow_id = $workflow_id)
), known AS (
    SELECT workflow_id, min(first_key) AS first_key FROM (
        SELECT workflow_id, first_key FROM counts
        UNION ALL SELECT workflow_id, key FROM own
    ) GROUP BY workflow_id
), fleetwide AS (
    SELECT artifact_version, {'ts': ts, 'seq': seq} AS key
    FROM audit_events
    WHERE kind = 'activation' AND workflow_id IS NULL AND artifact_version IS NOT NULL
), inherited AS (
    -- per workflow: every global activation from its first record on, and the last before it
    SELECT k.workflow_id, f.artifact_version, f.key
    FROM known k JOIN fleetwide f ON f.key >= k.first_key
    UNION ALL
    SELECT k.workflow_id, arg_max(f.artifact_version, f.key), max(f.key)
    FROM known k JOIN fleetwide f ON f.key < k.first_key
    GROUP BY k.workflow_id
), activated AS (
    SELECT workflow_id, artifact_version, max(key) AS activated_key
    FROM (SELECT * FROM own UNION ALL SELECT * FROM inherited)
    GROUP BY ALL
)
SELECT workflow_id, artifact_version,
       coalesce(c.executions, 0)::BIGINT AS executions,
       coalesce(c.successes, 0)::BIGINT AS successes,
       c.first_key.ts AS first_ts,
       a.activated_key.ts AS activated_ts
FROM counts c FULL OUTER JOIN activated a USING (workflow_id, artifact_version)
ORDER BY workflow_id, coalesce(a.activated_key, c.first_key)
