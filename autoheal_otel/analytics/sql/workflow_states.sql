-- Each workflow's state as of an instant: its last transition, with why and since when, and
-- the artifact version last activated for it. Lists every workflow with a transition or an
-- activation, and those with any record after $since.
-- param as_of timestamp = now: the instant to look from
-- param since timestamp = 1970-01-01: also list workflows with a record after this instant
-- lookback: since
WITH last_transition AS (
    SELECT workflow_id,
           arg_max({'state': state, 'previous_state': previous_state, 'since': ts,
                    'reason': message, 'rule': rule, 'cause': cause, 'actor': actor},
                   {'ts': ts, 'seq': seq}) AS t
    FROM audit_events
    WHERE kind = 'transition' AND workflow_id IS NOT NULL AND ts <= $as_of::TIMESTAMP
    GROUP BY workflow_id
), last_activation AS (
    SELECT workflow_id, arg_max(artifact_version, {'ts': ts, 'seq': seq}) AS artifact_version
    FROM audit_events
    WHERE kind = 'activation' AND workflow_id IS NOT NULL AND ts <= $as_of::TIMESTAMP
    GROUP BY workflow_id
), recent AS (
    SELECT workflow_id, min(ts) AS first_ts
    FROM audit
    WHERE workflow_id IS NOT NULL AND ts <= $as_of::TIMESTAMP AND ts > $since::TIMESTAMP
    GROUP BY workflow_id
), seen AS (
    SELECT workflow_id FROM last_transition
    UNION SELECT workflow_id FROM last_activation
    UNION SELECT workflow_id FROM recent
)
SELECT s.workflow_id,
       coalesce(t.t.state, 'running') AS state,
       t.t.previous_state AS previous_state,
       -- A workflow that never changed state has been running since its first record.
       coalesce(t.t.since, r.first_ts) AS since,
       coalesce(t.t.reason, CASE WHEN r.first_ts IS NOT NULL THEN 'running since its first record' END) AS reason,
       t.t.rule AS rule,
       t.t.cause AS cause,
       t.t.actor AS actor,
       v.artifact_version
FROM seen s
LEFT JOIN last_transition t USING (workflow_id)
LEFT JOIN last_activation v USING (workflow_id)
LEFT JOIN recent r USING (workflow_id)
ORDER BY s.workflow_id
