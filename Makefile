# Tokenhub: `make dev` runs everything locally, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: install dev test lint format bench browser clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

# Debian's Chromium for the browser tests (Playwright's own browser download needs the internet).
browser:
	@bash platform/scripts/ensure-chromium.sh

dev: install
	@bash platform/scripts/dev.sh

test: install browser
	@bash platform/scripts/test.sh $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@bash platform/scripts/bench.sh

clean:
	rm -rf $(VENV) .dev db.sqlite3 staticfiles .pytest_cache
