-- Every failing result, oldest first, for timelines; $workflow_id '' means every workflow.
-- param workflow_id text = '': the workflow to show ('' means every workflow)
SELECT ts, workflow_id, step_id, trigger, confidence
FROM audit
WHERE kind = 'result' AND trigger IS NOT NULL
  AND ($workflow_id = '' OR workflow_id = $workflow_id)
ORDER BY ts, seq
