"""The headless ``runbook-desk`` commands. Qt-free (an import contract checks it): it runs on servers and
CI."""
