-- Executions and successes per workflow and artifact version, each workflow's versions in the
-- order they were first used: a restarted manager rebuilds the regression rule's counts.
SELECT workflow_id, artifact_version,
       count(*) AS executions,
       count(*) FILTER (WHERE outcome = 'success') AS successes
FROM audit
WHERE kind = 'result' AND artifact_version IS NOT NULL
GROUP BY ALL
ORDER BY workflow_id, min({'ts': ts, 'seq': seq})
