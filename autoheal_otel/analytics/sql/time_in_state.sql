-- Seconds each workflow spent in each state up to an instant (a workflow starts RUNNING at its
-- first record).
-- param as_of timestamp = now: the instant to count up to
WITH firsts AS (
    SELECT workflow_id, min(ts) AS ts FROM audit
    WHERE workflow_id IS NOT NULL AND ts <= $as_of::TIMESTAMP
    GROUP BY workflow_id
), changes AS (
    SELECT workflow_id, ts, seq, state FROM audit_events
    WHERE kind = 'transition' AND ts <= $as_of::TIMESTAMP
    UNION ALL
    SELECT workflow_id, ts, -1 AS seq, 'running' AS state FROM firsts
), spans AS (
    SELECT workflow_id, state, ts,
           lead(ts, 1, $as_of::TIMESTAMP) OVER (PARTITION BY workflow_id ORDER BY ts, seq) AS until
    FROM changes
)
SELECT workflow_id, state,
       round(sum(epoch_us(until) - epoch_us(ts)) / 1e6, 3) AS seconds,
       count(*) AS entries
FROM spans
GROUP BY ALL
ORDER BY workflow_id, state
