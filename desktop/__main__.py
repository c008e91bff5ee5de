"""``python -m desktop`` and the frozen build's entry script: the same ``runbook-desk`` command."""

import sys

from desktop.launcher import main

if __name__ == "__main__":
    sys.exit(main())
