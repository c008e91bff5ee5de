#!/usr/bin/env bash
# `make run`: open the desktop app on the built-in demo workspace (created on first start).
# With no display (a server, a container) the window opens on a virtual X display via xvfb-run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(uname -s)" = "Linux" ] && [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ]; then
  echo "run: no display found; starting on a virtual display (xvfb-run). Set DISPLAY to see the window." >&2
  exec xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/runbook-desk --demo "$@"
fi
exec .venv/bin/runbook-desk --demo "$@"
