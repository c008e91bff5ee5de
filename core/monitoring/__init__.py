"""Monitoring alerts (issue 13): events from monitoring systems, deduplicated into alerts and correlated into
incidents that are matched to runbooks like tickets."""
