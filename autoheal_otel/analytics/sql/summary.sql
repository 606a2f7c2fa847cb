-- One row per workflow: decisions, results, failures, blocked gates and transitions.
SELECT workflow_id,
       count(*) AS decisions,
       count(*) FILTER (WHERE kind = 'result') AS results,
       count(*) FILTER (WHERE kind = 'result' AND trigger IS NOT NULL) AS failures,
       count(*) FILTER (WHERE kind = 'gate' AND NOT allowed) AS blocked_gates,
       count(*) FILTER (WHERE kind = 'transition') AS transitions,
       min(ts) AS first_ts,
       max(ts) AS last_ts
FROM audit
WHERE workflow_id IS NOT NULL
GROUP BY workflow_id
ORDER BY workflow_id
