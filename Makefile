# The two set-up commands of the README: `make run` (the app on the demo folder) and `make test`.
# Both create or reuse the virtual environment in .venv; nothing else has to be installed by hand.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.segstudio-installed

.PHONY: run test lint bench venv system-deps clean-venv

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash packaging/system_deps.sh $(if $(GUI),--gui,)

run: $(STAMP)
	@bash packaging/system_deps.sh --gui
	$(VENV)/bin/segstudio resources/demo

test: $(STAMP)
	@bash packaging/system_deps.sh --test
	$(PY) -m pytest -q -ra

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: $(STAMP)
	$(PY) -m bench.run_all

clean-venv:
	rm -rf $(VENV)
