-- The highest sequence number in the log (a restarted manager continues after it).
SELECT coalesce(max(seq), 0) AS max_seq FROM audit
