# labkit: two commands on a fresh machine with Python 3.10+: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= build

.PHONY: lab test notebook clean venv

$(BIN)/labkit: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

venv: $(BIN)/labkit

## make lab: execute every notebook (full setting) and write executed notebooks, metrics and report under build/
lab: venv
	$(BIN)/labkit run --out $(OUT)

## make test: unit tests, then nbval over every notebook in the fast (smoke) setting
test: venv
	$(BIN)/python -m pytest tests
	LABKIT_FAST=1 LABKIT_STRICT_CHECKS=1 LABKIT_OUT=$(OUT)/nbval $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider notebooks

## make notebook: JupyterLab on notebooks/
notebook: venv
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(OUT)
