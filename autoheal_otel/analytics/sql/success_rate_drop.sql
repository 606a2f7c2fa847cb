-- Recent success rate against a baseline, per workflow, with a verdict: 'fail' when the recent
-- rate dropped by at least $drop_points percentage points, 'inconclusive' when either side has
-- fewer than $min_executions results, else 'pass'. Whole hours come from the hourly rollups;
-- only the (at most three) hours that hold a boundary of the two sides are read row by row.
-- param as_of timestamp = now: the instant to look from
-- param recent_seconds seconds = 3600: the recent side of the comparison
-- param baseline_seconds seconds = 21600: the baseline side, before the recent one
-- param min_executions count = 10: results each side needs for a verdict
-- param drop_points number in [0, 100] = 20: the drop in percentage points that fails
-- lookback: $recent_seconds + $baseline_seconds
WITH edges AS (
    -- the rows of the hours that hold the oldest boundary, the one between the sides, as_of
    SELECT workflow_id, ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT)) AS recent, 1 AS executions, (outcome = 'success')::INT AS successes
    FROM audit
    WHERE kind = 'result' AND ts > $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT)) AND ts <= $as_of::TIMESTAMP
      AND ((ts >= date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT))) AND ts < date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT))) + INTERVAL 1 HOUR)
           OR (ts >= date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT))) AND ts < date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT))) + INTERVAL 1 HOUR)
           OR ts >= date_trunc('hour', $as_of::TIMESTAMP))
), whole AS (
    SELECT workflow_id, hour > $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT)) AS recent, executions, successes
    FROM audit_hourly
    WHERE hour > $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT)) AND hour + INTERVAL 1 HOUR <= $as_of::TIMESTAMP
      AND hour NOT IN (date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil(($recent_seconds::DOUBLE + $baseline_seconds::DOUBLE) * 1000000) AS BIGINT))), date_trunc('hour', $as_of::TIMESTAMP - to_microseconds(CAST(ceil($recent_seconds::DOUBLE * 1000000) AS BIGINT))), date_trunc('hour', $as_of::TIMESTAMP))
), r AS (
    SELECT * FROM edges UNION ALL SELECT * FROM whole
), sides AS (
    SELECT workflow_id,
           coalesce(sum(executions) FILTER (WHERE NOT recent), 0)::BIGINT AS baseline_executions,
           coalesce(sum(successes) FILTER (WHERE NOT recent), 0)::BIGINT AS baseline_successes,
           coalesce(sum(executions) FILTER (WHERE recent), 0)::BIGINT AS recent_executions,
           coalesce(sum(successes) FILTER (WHERE recent), 0)::BIGINT AS recent_successes
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
