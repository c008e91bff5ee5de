"""What the store says about the work: gap analysis and its report, metrics, health alerts."""
