# Two commands are all a newcomer needs:  make demo  and  make test.
# Each creates .venv on first use and installs the project with its dev extras into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install demo test lint format bench clean xlsforms messages

help:
	@echo "make demo    run a whole consultation round on the embedded defaults (no Telegram needed)"
	@echo "make test    run the test suite, one worker per core (SQLite; PostgreSQL too when CONSULTBOT_TEST_POSTGRES_URL is set)"
	@echo "make lint    ruff, and import-linter for the layers (pyproject.toml)"
	@echo "make bench   run the benchmarks under bench/ (prints figures)"
	@echo "make messages  extract the translatable messages and update translations/*/messages.po"
	@echo "make xlsforms  write the spreadsheet (XLSForm) copies of the shipped consultation sets"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/consultbot demo

test: $(STAMP)
	$(BIN)/python -m pytest -n auto --dist worksteal

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check bot handlers storage standin tests bench
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format bot handlers storage standin tests bench

bench: $(STAMP)
	@for script in bench/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

# The TOML files are the sources; the .xlsx copies (and the starter spreadsheet) are written
# from them. tests/unit/test_xlsform.py fails when a copy no longer matches its source.
xlsforms: $(STAMP)
	$(BIN)/python -m bot.consultations.xlsform_write templates/consultations templates/consultations/xlsform
	$(BIN)/python -m bot.consultations.xlsform_write templates/consultations/starter templates/consultations/xlsform

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache

# Extract every message (templates and Python, babel.cfg) into translations/messages.pot and
# merge it into each language's catalog; then translate what is new (the README's "Languages").
# No compile step: bot/kernel/i18n.py compiles the .po files in memory at start.
messages: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -o translations/messages.pot --no-location --omit-header -w 100 .
	$(BIN)/pybabel update -i translations/messages.pot -d translations -w 100 --no-fuzzy-matching
