-- The highest sequence number recorded after $since, or by any session, transition or other
-- state record (a restarted manager continues after it). Sequence numbers need only be unique
-- per writer, and every process is a new writer, so a bounded lookback is enough. A sequence
-- number above 2^53 - 1 cannot come from a writer (it would take centuries) and is not
-- continued from, so a hostile record never pushes the next writer past BIGINT: `ignored`
-- counts such records.
-- param since timestamp = 1970-01-01: look at result records after this instant
-- lookback: since
SELECT coalesce(max(seq) FILTER (WHERE seq <= 9007199254740991), 0) AS max_seq,
       count(*) FILTER (WHERE seq > 9007199254740991) AS ignored
FROM (
    SELECT seq FROM audit_events
    UNION ALL
    SELECT seq FROM audit WHERE ts > $since::TIMESTAMP
)
