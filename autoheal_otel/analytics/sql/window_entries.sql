-- The failing results that can still be inside a window (warm restart rebuilds the in-memory
-- windows from these). Workflow entries come after the workflow's last reset; the global flag
-- says whether the entry also comes after the last global resume.
-- Params: $as_of, $window_seconds (the longest window of any scope).
WITH resets AS (
    SELECT workflow_id, max({'ts': ts, 'seq': seq}) AS reset
    FROM audit
    WHERE kind = 'transition'
      AND ts <= $as_of::TIMESTAMP
      AND (cause = 'probe_success' OR (cause = 'operator' AND state IN ('running', 'degraded')))
    GROUP BY workflow_id
), global_reset AS (
    SELECT max({'ts': ts, 'seq': seq}) AS reset
    FROM audit
    WHERE kind = 'global' AND reason = 'global.resumed' AND ts <= $as_of::TIMESTAMP
)
SELECT a.workflow_id, a.step_id, a.ts, a.seq, a.trigger,
       (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset) AS in_workflow,
       (g.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > g.reset) AS in_global
FROM audit a
LEFT JOIN resets r USING (workflow_id)
CROSS JOIN global_reset g
WHERE a.kind = 'result'
  AND a.trigger IS NOT NULL
  AND a.ts <= $as_of::TIMESTAMP
  AND epoch_us($as_of::TIMESTAMP) - epoch_us(a.ts) < $window_seconds * 1000000
ORDER BY a.ts, a.seq
