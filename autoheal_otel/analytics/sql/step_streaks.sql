-- Consecutive TARGET_NOT_FOUND and low-confidence results per step, as of an instant, since
-- the workflow's steps were last reset (recovery, probe success or operator release), looking
-- back no further than $since (a warm restart bounds its lookback; analysts pass an old date).
-- param as_of timestamp = now: the instant to look from
-- param since timestamp = 1970-01-01: look back no further than this instant
-- lookback: since
WITH resets AS (
    SELECT workflow_id, max({'ts': ts, 'seq': seq}) AS reset
    FROM audit_step_resets
    WHERE ts <= $as_of::TIMESTAMP
    GROUP BY workflow_id
), results AS (
    SELECT a.workflow_id, a.step_id, {'ts': a.ts, 'seq': a.seq} AS k,
           list_contains(a.signals, 'target_not_found') AS tnf,
           list_contains(a.signals, 'low_confidence') AS low
    FROM audit a
    LEFT JOIN resets r USING (workflow_id)
    WHERE a.kind = 'result'
      AND a.ts <= $as_of::TIMESTAMP
      AND a.ts > $since::TIMESTAMP
      AND (r.reset IS NULL OR {'ts': a.ts, 'seq': a.seq} > r.reset)
), breaks AS (
    SELECT workflow_id, step_id,
           max(k) FILTER (WHERE NOT tnf) AS last_not_tnf,
           max(k) FILTER (WHERE NOT low) AS last_not_low
    FROM results
    GROUP BY ALL
)
SELECT s.workflow_id, s.step_id,
       count(*) FILTER (WHERE b.last_not_tnf IS NULL OR s.k > b.last_not_tnf) AS consecutive_target_not_found,
       count(*) FILTER (WHERE b.last_not_low IS NULL OR s.k > b.last_not_low) AS consecutive_low_confidence
FROM results s
JOIN breaks b USING (workflow_id, step_id)
GROUP BY ALL
ORDER BY s.workflow_id, s.step_id
