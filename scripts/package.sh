#!/usr/bin/env bash
# `make package`: the frozen one-folder build (build.spec) in dist/runbook-desk/, its archive
# dist/runbook-desk-<version>-linux-x86_64.tar.gz (top folder runbook-desk-<version>/), and the budgets
# measured on it (sizes, frozen --self-test time, time to the main window under Xvfb).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
version=$("$BIN/python" -c 'from importlib.metadata import version; print(version("runbook-desk"))')
archive="dist/runbook-desk-${version}-linux-x86_64.tar.gz"
rm -rf dist/runbook-desk "$archive"
started=$(date +%s)
"$BIN/pyinstaller" --noconfirm --clean --log-level WARN --distpath dist --workpath build/pyinstaller build.spec
# The S flag keeps the runbook-desk-cli -> runbook-desk symlink's target as it is.
tar -C dist --transform "s,^runbook-desk,runbook-desk-${version},S" -czf "$archive" runbook-desk
echo "built $archive in $(($(date +%s) - started)) s"
"$BIN/python" scripts/package_check.py budgets dist/runbook-desk "$archive"
