# Two commands set everything up: `make run` and `make test`. Both create .venv on first use and are
# no-ops for the install step afterwards (the stamp is newer than pyproject.toml).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-keychain lint format system-deps bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

run: $(STAMP) system-deps
	bash scripts/run-demo.sh

test: $(STAMP) system-deps
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest

# The credential tests against the real OS keychain: a private D-Bus session with an unlocked gnome-keyring
# (what a desktop login gives the app), so they run the same on a headless CI machine as on a laptop.
test-keychain: $(STAMP)
	@bash scripts/install-system-deps.sh keychain
	dbus-run-session -- sh -ec 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; \
		RUNBOOK_DESK_KEYCHAIN_TESTS=1 $(BIN)/python -m pytest -p no:cacheprovider -m keychain tests/connectors'

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/import_100k.py

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
