-- Executions and successes per workflow and artifact version, with the version's first and
-- last use: the regression monitor compares the active version with the previous one.
-- param workflow_id text: the workflow to show
SELECT coalesce(artifact_version, '') AS artifact_version,
       count(*) AS executions,
       count(*) FILTER (WHERE outcome = 'success') AS successes,
       min({'ts': ts, 'seq': seq}).ts AS first_ts,
       max({'ts': ts, 'seq': seq}).ts AS last_ts
FROM audit
WHERE kind = 'result' AND workflow_id = $workflow_id
GROUP BY ALL
ORDER BY min({'ts': ts, 'seq': seq})
