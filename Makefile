# labkit: two commands on a fresh machine with Python 3.10-3.13: `make lab` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
OUT    ?= build

.PHONY: lab test notebook clean venv

# INSTALLER=uv (what CI uses): the same pinned wheels installed by uv, several times faster than pip; bytecode is
# compiled at install, as pip does (without it every kernel recompiles TensorFlow: PYTHONDONTWRITEBYTECODE).
# uv reads no pip.conf: .ci/run hands it pip's index settings. The venv is made without pip (ensurepip takes ~7 s;
# uv installs pip into it in ~1 s) and uv comes from the machine's pip, into $(VENV)/uv-tool.
INSTALLER ?= pip
ifeq ($(INSTALLER),uv)
UV      = $(VENV)/uv-tool/bin/uv
MKVENV  = $(PYTHON) -m venv --without-pip $(VENV) && $(PYTHON) -m pip install -q --target $(VENV)/uv-tool uv
INSTALL = $(UV) pip install -q --python $(BIN)/python --compile-bytecode
else
MKVENV  = $(PYTHON) -m venv $(VENV)
INSTALL = $(BIN)/python -m pip install -q
endif

# An editable install skips the package's data files: the shipped Jupyter configuration is copied where a wheel
# install puts it (the venv's etc/jupyter and JupyterLab's settings overrides.d).
$(BIN)/labkit: requirements.txt pyproject.toml jupyter-config/jupyter_server_config.json jupyter-config/lab/overrides.d/labkit.json
	$(MKVENV)
	$(INSTALL) --upgrade pip
	$(INSTALL) -r requirements.txt
	$(INSTALL) --no-deps -e .
	mkdir -p $(VENV)/etc/jupyter $(VENV)/share/jupyter/lab/settings/overrides.d
	cp jupyter-config/jupyter_server_config.json $(VENV)/etc/jupyter/
	cp jupyter-config/lab/overrides.d/labkit.json $(VENV)/share/jupyter/lab/settings/overrides.d/
	touch $@

venv: $(BIN)/labkit

## make lab: execute every notebook (full setting) and write executed notebooks, metrics and report under build/
lab: venv
	$(BIN)/labkit run --out $(OUT)

## make test: one pytest session on two workers: the unit tests (one test file per worker at a time) and nbval over
## every notebook (all notebooks in order on one worker, fast setting, strict checks, store build/nbval: conftest.py).
## The first -p plugin lets nbformat's jsonschema skip a format checker that takes ~3 s to import in every process;
## Hypothesis's pytest plugin imports all of Hypothesis (~1.8 s) in every process: only test_export_hostile uses it,
## and @given tests run and report their failing example without the plugin.
test: venv
	$(BIN)/python -m pytest -p labkit._jsonschema_fast -p no:hypothesispytest -n 2 --dist loadfile -p no:cacheprovider --nbval-lax --nbval-cell-timeout=900 tests notebooks

## make notebook: JupyterLab on notebooks/ (idle kernels culled after 15 min, no news prompt: jupyter-config/)
notebook: venv
	$(BIN)/jupyter lab notebooks

clean:
	rm -rf $(OUT)
