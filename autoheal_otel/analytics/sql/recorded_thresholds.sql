-- The calibrated threshold last recorded per matching method as of an instant, and when (the
-- log's calibration records only: a warm restart reads these without scanning the results).
-- param as_of timestamp = now: the instant to look from
SELECT details ->> '$.method' AS method,
       arg_max((details ->> '$.threshold')::DOUBLE, {'ts': ts, 'seq': seq}) AS recorded_threshold,
       max(ts) AS recorded_at
FROM audit_events
WHERE kind = 'calibration' AND reason = 'calibration.changed' AND ts <= $as_of::TIMESTAMP
GROUP BY ALL
ORDER BY method
