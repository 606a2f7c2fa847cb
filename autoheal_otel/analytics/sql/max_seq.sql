-- The highest sequence number recorded after $since, or by any session, transition or other
-- state record (a restarted manager continues after it). Sequence numbers need only be unique
-- per writer, and every process is a new writer, so a bounded lookback is enough.
-- param since timestamp = 1970-01-01: look at result records after this instant
-- lookback: since
SELECT coalesce(max(seq), 0) AS max_seq
FROM (
    SELECT max(seq) AS seq FROM audit_events
    UNION ALL
    SELECT max(seq) AS seq FROM audit WHERE ts > $since::TIMESTAMP
)
