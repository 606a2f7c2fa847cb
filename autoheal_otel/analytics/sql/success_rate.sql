-- Success rate per workflow and artifact version between two instants.
-- param since timestamp = 1970-01-01: the start of the period (excluded)
-- param until timestamp = now: the end of the period (included)
-- lookback: since
SELECT workflow_id,
       coalesce(artifact_version, '') AS artifact_version,
       count(*) AS executions,
       count(*) FILTER (WHERE outcome = 'success') AS successes,
       count(*) FILTER (WHERE outcome = 'success' AND validated) AS validated_successes,
       round(count(*) FILTER (WHERE outcome = 'success') / count(*), 4) AS success_rate,
       min(ts) AS first_ts,
       max(ts) AS last_ts
FROM audit
WHERE kind = 'result' AND ts > $since::TIMESTAMP AND ts <= $until::TIMESTAMP
GROUP BY ALL
ORDER BY workflow_id, first_ts
