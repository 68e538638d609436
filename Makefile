# labkit: two commands on a fresh machine with Python 3.10-3.13: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= build

.PHONY: lab test notebook clean venv

# An editable install skips the package's data files: the shipped Jupyter configuration is copied where a wheel
# install puts it (the venv's etc/jupyter and JupyterLab's settings overrides.d).
$(BIN)/labkit: requirements.txt pyproject.toml jupyter-config/jupyter_server_config.json jupyter-config/lab/overrides.d/labkit.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	mkdir -p $(VENV)/etc/jupyter $(VENV)/share/jupyter/lab/settings/overrides.d
	cp jupyter-config/jupyter_server_config.json $(VENV)/etc/jupyter/
	cp jupyter-config/lab/overrides.d/labkit.json $(VENV)/share/jupyter/lab/settings/overrides.d/
	touch $@

venv: $(BIN)/labkit

## make lab: execute every notebook (full setting) and write executed notebooks, metrics and report under build/
lab: venv
	$(BIN)/labkit run --out $(OUT)

## make test: unit tests (two workers, one test file per worker: the class simulation runs beside the rest), then nbval
## over every notebook in the fast (smoke) setting
test: venv
	$(BIN)/python -m pytest -n 2 --dist loadfile tests
	LABKIT_FAST=1 LABKIT_STRICT_CHECKS=1 LABKIT_OUT=$(OUT)/nbval $(BIN)/python -m pytest --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider notebooks

## make notebook: JupyterLab on notebooks/ (idle kernels culled after 15 min, no news prompt: jupyter-config/)
notebook: venv
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(OUT)
