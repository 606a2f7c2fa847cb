-- Failures per workflow and trigger inside the workflow window, as of an instant.
-- Mirrors the in-memory window: a failing result counts while as_of - ts < window_seconds,
-- and only after the workflow's last reset (an operator release or a successful probe).
-- Params: $as_of (timestamp text), $window_seconds (double), $triggers (counted triggers).
WITH resets AS (
    SELECT workflow_id, max({'ts': ts, 'seq': seq}) AS reset
    FROM audit
    WHERE kind = 'transition'
      AND ts <= $as_of::TIMESTAMP
      AND (cause = 'probe_success' OR (cause = 'operator' AND state IN ('running', 'degraded')))
    GROUP BY workflow_id
)
SELECT a.workflow_id, a.trigger, count(*) AS failures
FROM audit a
LEFT JOIN resets r USING (workflow_id)
WHERE a.kind = 'result'
  AND list_contains($triggers, a.trigger)
  AND a.ts <= $as_of::TIMESTAMP
  AND epoch_us($as_of::TIMESTAMP) - epoch_us(a.ts) < $window_seconds * 1000000
  AND (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset)
GROUP BY ALL
ORDER BY a.workflow_id, a.trigger
