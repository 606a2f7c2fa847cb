-- Failures per workflow and trigger inside the workflow window, as of an instant. Mirrors the
-- in-memory window: a failing result counts while as_of - ts < window_seconds, and only after
-- the workflow's last reset (an operator release or a successful probe).
-- param as_of timestamp = now: the instant to look from
-- param window_seconds seconds = 600: how far back the window reaches
-- param triggers triggers = all: the triggers counted
-- lookback: $window_seconds
WITH resets AS (
    SELECT workflow_id, max({'ts': ts, 'seq': seq}) AS reset
    FROM audit_resets
    -- a reset older than the window cannot exclude anything inside it
    WHERE in_window(ts, $window_seconds)
    GROUP BY workflow_id
)
SELECT a.workflow_id, a.trigger, count(*) AS failures
FROM audit a
LEFT JOIN resets r USING (workflow_id)
WHERE a.kind = 'result'
  AND list_contains($triggers, a.trigger)
  AND in_window(a.ts, $window_seconds)
  AND (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset)
GROUP BY ALL
ORDER BY a.workflow_id, a.trigger
