-- The steps with the most failing results, by trigger.
-- param limit count = 20: how many steps to list
SELECT workflow_id, step_id,
       count(*) AS failures,
       count(*) FILTER (WHERE trigger = 'target_not_found') AS target_not_found,
       count(*) FILTER (WHERE trigger = 'postcondition_failed') AS postcondition_failed,
       count(*) FILTER (WHERE trigger = 'watchdog_timeout') AS watchdog_timeout,
       count(*) FILTER (WHERE trigger = 'ambiguous_match') AS ambiguous_match,
       count(*) FILTER (WHERE trigger = 'low_confidence') AS low_confidence,
       count(*) FILTER (WHERE trigger = 'error') AS error,
       round(avg(confidence), 3) AS mean_confidence,
       max(ts) AS last_failure
FROM audit
WHERE kind = 'result' AND trigger IS NOT NULL
GROUP BY ALL
ORDER BY failures DESC, workflow_id, step_id
LIMIT $limit
