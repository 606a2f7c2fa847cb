-- The failing results that can still be inside a window (warm restart rebuilds the in-memory
-- windows from these). Workflow entries come after the workflow's last reset; the global flag
-- says whether the entry also comes after the last global resume.
-- param as_of timestamp = now: the instant to look from
-- param window_seconds seconds = 600: the longest window of any scope
-- lookback: $window_seconds
WITH resets AS (
    SELECT workflow_id, max({'ts': ts, 'seq': seq}) AS reset
    FROM audit_resets
    -- a reset older than the window cannot exclude anything inside it
    WHERE in_window(ts, $window_seconds)
    GROUP BY workflow_id
), global_reset AS (
    SELECT max({'ts': ts, 'seq': seq}) AS reset
    FROM audit_global_resets
    WHERE in_window(ts, $window_seconds)
)
SELECT a.workflow_id, a.step_id, epoch_us(a.ts) AS ts_us, a.trigger,
       (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset) AS in_workflow,
       (g.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > g.reset) AS in_global
FROM audit a
LEFT JOIN resets r USING (workflow_id)
CROSS JOIN global_reset g
WHERE a.kind = 'result'
  AND a.trigger IS NOT NULL
  AND in_window(a.ts, $window_seconds)
ORDER BY a.ts, a.seq
