# Two commands set everything up: `make run` and `make test`. Both create .venv on first use and are
# no-ops for the install step afterwards (the stamp is newer than pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# all-MiniLM-L6-v2 exported to ONNX (core/embedding_onnx.py): the app's embedder when present; bundled.
ONNX_MODEL := $(VENV)/share/runbook-desk/onnx-model

.PHONY: run test test-team test-keychain lint format system-deps bench clean package package-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,package]'
	touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

# Once per install (about 10 s, torch's export): the app then loads its model in ~0.5 s instead of ~8 s.
$(ONNX_MODEL)/manifest.json: $(STAMP)
	$(BIN)/python -m core.matching.embedding_onnx export $(ONNX_MODEL)

run: $(STAMP) $(ONNX_MODEL)/manifest.json system-deps
	bash scripts/run-demo.sh

test: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# Team mode against a real PostgreSQL (issue 17): Debian's server package, a throwaway cluster in a temporary
# folder as an unprivileged user (scripts/pg-cluster.sh), the `team` tests, then the cluster is deleted.
# `make test` skips these tests, saying why; this runs them.
test-team: $(STAMP)
	@bash scripts/install-system-deps.sh team
	bash scripts/pg-cluster.sh run -- env QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -p no:cacheprovider -m team

# The credential tests against the real OS keychain: a private D-Bus session with an unlocked gnome-keyring
# (what a desktop login gives the app), so they run the same on a headless CI machine as on a laptop.
test-keychain: $(STAMP)
	@bash scripts/install-system-deps.sh keychain
	dbus-run-session -- sh -ec 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
		RUNBOOK_DESK_KEYCHAIN_TESTS=1 $(BIN)/python -m pytest -p no:cacheprovider -m keychain tests/connectors'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The frozen build (build.spec) in dist/, its .tar.gz, and the size and start-up budgets printed.
package: $(STAMP) $(ONNX_MODEL)/manifest.json
	@bash scripts/install-system-deps.sh package
	bash scripts/package.sh

# package, then from the unpacked archive in a clean environment: --self-test and the window under Xvfb
# (screenshot in docs/packaged.png).
package-test: package
	$(BIN)/python scripts/package_check.py smoke --screenshot docs/packaged.png

bench: $(STAMP)
	$(BIN)/python bench/import_100k.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
