# Two commands on a fresh machine: `make run` (demo server on SQLite) and `make test` (whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export ASMFIELD_DATA_DIR ?= $(CURDIR)/data

.PHONY: install run test test-postgres bench lint clean

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	$(BIN)/python -m app.assets install
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/asmfield init --demo
	$(BIN)/asmfield serve --host 127.0.0.1 --port 8000

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests

# The storage-touching tests again, against PostgreSQL (ASMFIELD_TEST_POSTGRES_URL must be set).
test-postgres: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m storage tests

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) data
