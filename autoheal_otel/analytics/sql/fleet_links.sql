-- Each writer's fleet link as its last link record says: connected or not, since when, to which host and namespace.
-- param as_of timestamp = now: the instant to look from
SELECT writer,
       arg_max(reason, {'ts': ts, 'seq': seq}) AS reason,
       arg_max(ts, {'ts': ts, 'seq': seq}) AS since,
       arg_max(details, {'ts': ts, 'seq': seq}) AS details
FROM audit_events
WHERE kind = 'fleet'
  AND reason IN ('fleet.connected', 'fleet.reconnected', 'fleet.disconnected')
  AND ts <= $as_of::TIMESTAMP
GROUP BY writer
ORDER BY writer
