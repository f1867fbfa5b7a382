# Two commands on a fresh machine: `make run` (demo server on SQLite) and `make test` (whole suite).
# Needs only Python 3.11+ (and Node.js/npm for the offline map assets); everything else is installed here.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
export ASMFIELD_DATA_DIR ?= $(CURDIR)/data

.PHONY: install chromium run test test-postgres bench bench-sync lint clean

$(STAMP): pyproject.toml constraints.txt package.json package-lock.json
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m app.assets install
	touch $(STAMP)

# Debian's Chromium for the browser tests (Playwright drives it; Playwright's own browsers are never downloaded).
chromium:
	@test -x $(CHROMIUM) || { \
	  echo "Installing Debian's chromium package for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

install: $(STAMP) chromium

run: $(STAMP)
	$(BIN)/asmfield init --demo
	$(BIN)/asmfield serve --host 127.0.0.1 --port 8000

test: $(STAMP) chromium
	$(BIN)/python -m pytest -n 2 tests

# The storage-touching tests again, against PostgreSQL (ASMFIELD_TEST_POSTGRES_URL must be set).
test-postgres: $(STAMP) chromium
	@test -n "$$ASMFIELD_TEST_POSTGRES_URL" || { echo "set ASMFIELD_TEST_POSTGRES_URL=postgresql+psycopg://user@host:5432/db"; exit 2; }
	$(BIN)/python -m pytest -n 2 -m storage tests

bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

# Issue 13's table: sync speed (reference generator, JSON batch) of the code at BEFORE and of this checkout,
# back to back in one run; PostgreSQL too when ASMFIELD_BENCH_PG names a server.
BEFORE ?= d05ca23
bench-sync: $(STAMP)
	$(BIN)/python -m bench central_load batch --before $(BEFORE) $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data node_modules app/web/static/vendor
