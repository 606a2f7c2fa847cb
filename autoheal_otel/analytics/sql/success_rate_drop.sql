-- Recent success rate against a baseline, per workflow, with a verdict: 'fail' when the recent
-- rate dropped by at least $drop_points percentage points, 'inconclusive' when either side has
-- fewer than $min_executions results, else 'pass'.
-- param as_of timestamp = now: the instant to look from
-- param recent_seconds seconds = 3600: the recent side of the comparison
-- param baseline_seconds seconds = 21600: the baseline side, before the recent one
-- param min_executions count = 10: results each side needs for a verdict
-- param drop_points number = 20: the drop in percentage points that fails
-- lookback: $recent_seconds + $baseline_seconds
WITH r AS (
    SELECT workflow_id,
           ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT)) AS recent,
           outcome = 'success' AS ok
    FROM audit
    WHERE kind = 'result'
      AND ts <= $as_of::TIMESTAMP
      AND ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE)::DOUBLE * 1000000) AS BIGINT))
), sides AS (
    SELECT workflow_id,
           count(*) FILTER (WHERE NOT recent) AS baseline_executions,
           count(*) FILTER (WHERE NOT recent AND ok) AS baseline_successes,
           count(*) FILTER (WHERE recent) AS recent_executions,
           count(*) FILTER (WHERE recent AND ok) AS recent_successes
    FROM r
    GROUP BY workflow_id
)
SELECT *,
       round(100.0 * baseline_successes / nullif(baseline_executions, 0), 2) AS baseline_rate_pct,
       round(100.0 * recent_successes / nullif(recent_executions, 0), 2) AS recent_rate_pct,
       CASE
           WHEN baseline_executions < $min_executions OR recent_executions < $min_executions
               THEN 'inconclusive'
           WHEN 100.0 * baseline_successes / baseline_executions
                - 100.0 * recent_successes / recent_executions >= $drop_points
               THEN 'fail'
           ELSE 'pass'
       END AS verdict
FROM sides
ORDER BY workflow_id
