"""Windows and dialogs opened from the pages: runbook editor, settings, the connector wizard."""
