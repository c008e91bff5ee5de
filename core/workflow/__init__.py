"""What analysts do with matches: the review queue and its decisions, runbook authoring, drafts."""
