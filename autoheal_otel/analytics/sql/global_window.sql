-- Failures of every workflow (every writer sharing the data directory) per trigger inside the
-- global window, as of an instant, after the last operator resume of the global breaker.
-- param as_of timestamp = now: the instant to look from
-- param window_seconds seconds = 600: how far back the window reaches
-- param triggers triggers = all: the triggers counted
-- lookback: $window_seconds
WITH reset AS (
    SELECT max({'ts': ts, 'seq': seq}) AS reset
    FROM audit_global_resets
    WHERE in_window(ts, $window_seconds)
)
SELECT a.trigger, count(*) AS failures
FROM audit a, reset r
WHERE a.kind = 'result'
  AND list_contains($triggers, a.trigger)
  AND in_window(a.ts, $window_seconds)
  AND (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset)
GROUP BY ALL
ORDER BY a.trigger
