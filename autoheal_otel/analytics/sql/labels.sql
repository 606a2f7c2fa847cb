-- Automatic stops and missed incidents, each with a label and why: a stop an operator released
-- within $release_seconds, after which the workflow had no failure for $clean_seconds, is a
-- false stop; a stop kept, or after which failures went on, is a true stop; an operator stop of
-- a running or degraded workflow is a missed incident. An operator's `label` record overrides.
-- param release_seconds seconds = 1800: a release within this after a stop can make it false
-- param clean_seconds seconds = 1800: after a release, this long without a failure is clean
WITH moves AS (
    SELECT ts, seq, writer, workflow_id, state, previous_state, cause, actor, message,
           coalesce(rule.rule, reason) AS rule
    FROM audit_events
    WHERE kind = 'transition'
), stops AS (
    SELECT *,
           CASE WHEN cause = 'operator' THEN 'operator' ELSE 'automatic' END AS stopped_by
    FROM moves
    WHERE state IN ('quarantined', 'paused', 'rollback')
      AND (cause <> 'operator' OR previous_state IN ('running', 'degraded'))
), released AS (
    -- the first operator move back to running or degraded after each automatic stop
    SELECT s.writer, s.seq, min(m.ts) AS released_at,
           arg_min(m.actor, m.ts) AS released_by
    FROM stops s JOIN moves m
      ON m.workflow_id = s.workflow_id AND m.cause = 'operator'
     AND m.state IN ('running', 'degraded') AND m.ts >= s.ts
    WHERE s.stopped_by = 'automatic'
    GROUP BY s.writer, s.seq
), failures AS (
    SELECT workflow_id, ts FROM audit
    WHERE kind = 'result' AND outcome <> 'success'
), after AS (
    SELECT r.writer, r.seq, count(f.ts) AS failures_after
    FROM released r JOIN stops s ON s.writer = r.writer AND s.seq = r.seq
    LEFT JOIN failures f ON f.workflow_id = s.workflow_id AND f.ts > r.released_at
     AND f.ts <= r.released_at + to_microseconds(CAST(ceil($clean_seconds::DOUBLE * 1000000) AS BIGINT))
    GROUP BY r.writer, r.seq
), explicit AS (
    SELECT details ->> '$.transition_writer' AS writer,
           (details ->> '$.transition_seq')::BIGINT AS seq,
           arg_max((details ->> '$.label')::BOOLEAN, {'ts': ts, 'seq': seq}) AS verdict,
           arg_max(actor, {'ts': ts, 'seq': seq}) AS actor,
           arg_max(message, {'ts': ts, 'seq': seq}) AS message
    FROM audit_events
    WHERE kind = 'label'
    GROUP BY ALL
), inferred AS (
    SELECT s.*, r.released_at, r.released_by, a.failures_after,
           date_diff('second', s.ts, r.released_at) AS released_after_s,
           CASE
               WHEN s.stopped_by = 'operator' THEN 'missed_incident'
               WHEN r.released_at IS NOT NULL
                    AND r.released_at <= s.ts + to_microseconds(CAST(ceil($release_seconds::DOUBLE * 1000000) AS BIGINT))
                    AND a.failures_after = 0 THEN 'false_stop'
               ELSE 'true_stop'
           END AS inferred,
           CASE
               WHEN s.stopped_by = 'operator'
                   THEN 'an operator stopped it (' || coalesce(s.actor, 'operator') || ') while the policy let it run'
               WHEN r.released_at IS NULL THEN 'never released'
               WHEN r.released_at > s.ts + to_microseconds(CAST(ceil($release_seconds::DOUBLE * 1000000) AS BIGINT))
                   THEN 'kept ' || date_diff('second', s.ts, r.released_at) || ' s before release (more than ' || regexp_replace(CAST($release_seconds AS VARCHAR), '\.0$', '') || ' s)'
               WHEN a.failures_after > 0
                   THEN 'released after ' || date_diff('second', s.ts, r.released_at) || ' s, then ' || a.failures_after || ' failures within ' || regexp_replace(CAST($clean_seconds AS VARCHAR), '\.0$', '') || ' s'
               ELSE 'released after ' || date_diff('second', s.ts, r.released_at) || ' s by ' || coalesce(r.released_by, 'operator') || ', then no failure for ' || regexp_replace(CAST($clean_seconds AS VARCHAR), '\.0$', '') || ' s'
           END AS inferred_why
    FROM stops s
    LEFT JOIN released r ON r.writer = s.writer AND r.seq = s.seq
    LEFT JOIN after a ON a.writer = s.writer AND a.seq = s.seq
)
SELECT i.ts, i.workflow_id, i.previous_state, i.state, i.cause, i.rule, i.stopped_by,
       CASE
           WHEN e.verdict IS NULL THEN i.inferred
           WHEN i.stopped_by = 'operator' THEN CASE WHEN e.verdict THEN 'missed_incident' ELSE 'no_incident' END
           WHEN e.verdict THEN 'true_stop'
           ELSE 'false_stop'
       END AS label,
       CASE WHEN e.verdict IS NULL THEN 'inferred' ELSE 'operator' END AS source,
       CASE
           WHEN e.verdict IS NULL THEN i.inferred_why
           ELSE 'labelled ' || e.verdict || ' by ' || coalesce(e.actor, 'operator') || ': ' || coalesce(e.message, '') || ' (inferred: ' || i.inferred || ', ' || i.inferred_why || ')'
       END AS why,
       i.released_at, i.failures_after, i.writer, i.seq
FROM inferred i
LEFT JOIN explicit e ON e.writer = i.writer AND e.seq = i.seq
ORDER BY i.ts, i.seq
