-- How far back the decided matches of every method's calibration window reach, as of an
-- instant, from the hourly rollups: the start of the newest whole hour at or after which each
-- method has at least $window decided matches (a method with fewer reaches back to its first),
-- less one second. The hour that holds $as_of is not counted (some of its rows are later), so
-- the answer is never too recent; precision_samples reads only what follows it.
-- param as_of timestamp = now: the instant to look from
-- param window count = 2000: how many of a method's most recent decided matches count
WITH per_hour AS (
    SELECT method, hour, sum(decided) AS decided
    FROM audit_hourly
    WHERE decided > 0 AND hour + INTERVAL 1 HOUR <= $as_of::TIMESTAMP
    GROUP BY ALL
), running AS (
    SELECT method, hour,
           sum(decided) OVER (PARTITION BY method ORDER BY hour DESC) AS at_or_after
    FROM per_hour
), reach AS (
    SELECT method,
           coalesce(max(hour) FILTER (WHERE at_or_after >= $window), min(hour)) AS oldest
    FROM running
    GROUP BY method
)
SELECT coalesce(min(oldest) - INTERVAL 1 SECOND, TIMESTAMP '1970-01-01') AS since FROM reach
