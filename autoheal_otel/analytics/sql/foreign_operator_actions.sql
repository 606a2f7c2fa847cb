-- Operator moves and global resumes that other writers (an `autoheal force`, another process)
-- recorded after an instant: a running manager with a shared log applies them at its sync.
-- param writer text: the writer to leave out (the reading manager's own id)
-- param since timestamp = 1970-01-01: only records after this instant
SELECT ts, seq, writer, kind, workflow_id, state, message, actor
FROM audit_events
WHERE writer <> $writer
  AND ts > $since::TIMESTAMP
  AND ((kind = 'transition' AND cause = 'operator')
       OR (kind = 'global' AND reason = 'global.resumed'))
ORDER BY ts, seq
