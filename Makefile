# The two commands: `make run` and `make test`. Both need only Python 3.12 on the machine.
PYTHON ?= python3.12
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SERVICES := $(PY) tools/devservices.py

.PHONY: run test install lint types pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## Set up, start the embedded services unless URLs are set, migrate, seed on first start,
## and run web (http://127.0.0.1:8000), a Celery worker and beat. Ctrl-C stops them all.
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(SERVICES) -- $(PY) tools/run_local.py

## Set up, start the embedded services unless URLs are set, then lint, types and the tests.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(SERVICES) --fast -- sh -c '$(VENV)/bin/mypy \
		&& DJANGO_SETTINGS_MODULE=atb_site.settings.test \
		   $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null \
		&& $(VENV)/bin/pytest $(PYTEST_ARGS)'


clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
