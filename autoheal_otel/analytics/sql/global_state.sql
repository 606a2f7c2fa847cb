-- The global breaker as of an instant: paused or not, since when and why.
-- param as_of timestamp = now: the instant to look from
SELECT arg_max(state, {'ts': ts, 'seq': seq}) AS state,
       arg_max(ts, {'ts': ts, 'seq': seq}) AS since,
       arg_max(message, {'ts': ts, 'seq': seq}) AS reason,
       arg_max(rule, {'ts': ts, 'seq': seq}) AS rule,
       max(seq) AS last_seq
FROM audit_events
WHERE kind = 'global' AND ts <= $as_of::TIMESTAMP
