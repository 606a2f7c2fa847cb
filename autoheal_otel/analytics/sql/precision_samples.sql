-- The decided matches that calibrate each matching method as of an instant: per method the
-- last $window results with a confidence that were either validated successes (correct) or
-- failed postconditions (wrong), oldest first. The method is the result's details.method when
-- it is a string, else faiss. A warm restart refills the calibration windows from these rows.
-- param as_of timestamp = now: the instant to look from
-- param window count = 2000: how many of a method's most recent decided matches count
-- param since timestamp = 1970-01-01: look back no further than this (calibration_horizon's answer)
-- lookback: since
WITH decided AS (
    SELECT CASE WHEN json_type(details -> '$.method') = 'VARCHAR'
                THEN details ->> '$.method' ELSE 'faiss' END AS method,
           confidence, outcome = 'success' AS correct, ts, seq, writer
    FROM audit
    WHERE kind = 'result' AND confidence IS NOT NULL
      AND ts <= $as_of::TIMESTAMP AND ts > $since::TIMESTAMP
      AND ((outcome = 'success' AND validated) OR outcome = 'postcondition_failed')
), ranked AS (
    SELECT *, row_number() OVER (PARTITION BY method ORDER BY ts DESC, seq DESC, writer DESC) AS age
    FROM decided
)
SELECT method, confidence, correct, ts, seq
FROM ranked
WHERE age <= $window
ORDER BY method, ts, seq, writer
