-- Match precision and the calibrated threshold per matching method as of an instant: over each
-- method's last $window decided matches (validated successes are correct, failed
-- postconditions wrong), the precision and the lowest confidence at or above which the
-- precision reaches $target_precision (1.0 when none does; empty below $min_samples matches),
-- next to the threshold last recorded in the log and when. The live calibration, a warm
-- restart and the overview dashboard's threshold gauge agree with this query.
-- param as_of timestamp = now: the instant to look from
-- param target_precision number in [0, 1] = 0.95: the precision matches above the threshold must reach
-- param min_samples count = 30: decided matches a method needs before it has a threshold
-- param window count = 2000: how many of a method's most recent decided matches count
WITH decided AS (
    SELECT CASE WHEN json_type(details -> '$.method') = 'VARCHAR'
                THEN details ->> '$.method' ELSE 'faiss' END AS method,
           confidence, outcome = 'success' AS correct, ts, seq, writer
    FROM audit
    WHERE kind = 'result' AND confidence IS NOT NULL
      AND ts <= $as_of::TIMESTAMP
      AND ((outcome = 'success' AND validated) OR outcome = 'postcondition_failed')
), kept AS (
    SELECT * FROM (
        SELECT *, row_number() OVER (PARTITION BY method ORDER BY ts DESC, seq DESC, writer DESC) AS age
        FROM decided
    ) WHERE age <= $window
), levels AS (
    -- per method and distinct confidence: the matches and the correct ones at or above it
    SELECT method, confidence,
           sum(count(*)) OVER (PARTITION BY method ORDER BY confidence DESC) AS at_or_above,
           sum(count(*) FILTER (WHERE correct)) OVER (PARTITION BY method ORDER BY confidence DESC) AS correct_above
    FROM kept
    GROUP BY method, confidence
), figures AS (
    SELECT method, count(*)::BIGINT AS samples, count(*) FILTER (WHERE correct)::BIGINT AS correct
    FROM kept GROUP BY method
), calibrated AS (
    SELECT method,
           coalesce(min(confidence) FILTER (WHERE correct_above::DOUBLE / at_or_above >= $target_precision), 1.0) AS threshold
    FROM levels GROUP BY method
), recorded AS (
    SELECT details ->> '$.method' AS method,
           arg_max((details ->> '$.threshold')::DOUBLE, {'ts': ts, 'seq': seq}) AS recorded_threshold,
           max(ts) AS recorded_at
    FROM audit_events
    WHERE kind = 'calibration' AND reason = 'calibration.changed' AND ts <= $as_of::TIMESTAMP
    GROUP BY ALL
)
SELECT method,
       coalesce(f.samples, 0)::BIGINT AS samples,
       coalesce(f.correct, 0)::BIGINT AS correct,
       f.correct::DOUBLE / f.samples AS precision,
       CASE WHEN f.samples >= $min_samples THEN c.threshold END AS threshold,
       r.recorded_threshold,
       r.recorded_at
FROM figures f
JOIN calibrated c USING (method)
FULL OUTER JOIN recorded r USING (method)
ORDER BY method
