-- Transition history, oldest first; $workflow_id '' means every workflow.
-- param workflow_id text = '': the workflow to show ('' means every workflow)
SELECT ts, workflow_id, previous_state, state, cause, reason, message, actor,
       rule.count AS rule_count, rule.threshold AS rule_threshold, writer, seq
FROM audit_events
WHERE kind = 'transition' AND ($workflow_id = '' OR workflow_id = $workflow_id)
ORDER BY ts, seq
