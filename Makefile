# Tokenhub: `make dev` runs everything locally, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements.lock 2>/dev/null | cksum | cut -d' ' -f1)

.PHONY: install dev test lint lock format bench browser proxy clean gettext messages translations

# requirements.lock pins every installed package to the versions CI tested (`make lock` rewrites it).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

# The zh-Hans catalogue is compiled here, never committed as .mo (docs/i18n.md).
install: $(STAMP) gettext translations

gettext:
	@bash platform/scripts/ensure-gettext.sh

translations:
	@if command -v msgfmt >/dev/null 2>&1; then DEBUG=true $(BIN)/python manage.py compilemessages --ignore '.venv' --ignore 'node_modules' -v 0; fi

# After adding or changing strings: refresh the catalogue, translate what the check lists, compile.
messages: install
	DEBUG=true $(BIN)/python manage.py makemessages --locale zh_Hans --no-obsolete --add-location file \
		--extension html,txt,py --ignore '.venv/*' --ignore 'tests/*' --ignore 'bench/*' --ignore 'devtools/*' \
		--ignore 'platform/*' --ignore 'docs/*' --ignore 'static/*' --ignore 'staticfiles/*' --ignore '*/migrations/*'
	$(BIN)/python platform/checks/translations.py || true
	DEBUG=true $(BIN)/python manage.py compilemessages --ignore '.venv' -v 0

# Debian's Chromium for the browser tests (Playwright's own browser download needs the internet).
browser:
	@bash platform/scripts/ensure-chromium.sh

# Debian's nginx for the reverse-proxy test (platform/nginx.conf in front of gunicorn).
proxy:
	@bash platform/scripts/ensure-nginx.sh

dev: install
	@bash platform/scripts/dev.sh

test: install browser proxy
	@bash platform/scripts/test.sh $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DEBUG=true $(BIN)/mypy tokenhub merchants wallets agents widgets devtools
	$(BIN)/lint-imports --no-cache
	$(BIN)/python platform/checks/import_cycles.py
	$(BIN)/python platform/checks/translations.py
	DEBUG=true $(BIN)/python manage.py makemigrations --check --dry-run

lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e ' > requirements.lock

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	@bash platform/scripts/bench.sh

clean:
	rm -rf $(VENV) .dev db.sqlite3 staticfiles .pytest_cache
