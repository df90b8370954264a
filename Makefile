# The two commands: `make run` and `make test`. Both need only Python 3.12 on the machine.
PYTHON ?= python3.12
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SERVICES := $(PY) tools/devservices.py

.PHONY: run manage test install chromium pgbouncer lint types pytest clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

## $(call apt_install,PROGRAM,PACKAGES,WHO): install Debian's PACKAGES when PROGRAM is missing and
## apt-get can be used (as root, or with password-less sudo); otherwise say why and go on: WHO (the
## tests that need it) then skip, except under CI=true, where they fail.
define apt_install
	@if [ -x "$(1)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null 2>&1; then \
		echo "make: $(1) is missing and there is no apt-get: $(3) will skip (fail under CI=true)"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	else echo "make: $(1) is missing and installing it needs root: $(3) will skip (fail under CI=true)"; exit 0; fi; \
	echo "make: installing Debian's $(2) for $(3)"; \
	( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
		--no-install-recommends $(2) >/dev/null ) \
	|| echo "make: could not install $(2) (see apt-get's message above): $(3) will skip (fail under CI=true)"
endef

## Debian's Chromium, for the dashboard's browser test (tests/browser/).
CHROMIUM ?= /usr/bin/chromium
chromium:
	$(call apt_install,$(CHROMIUM),chromium fonts-liberation,the browser test)

## Debian's PgBouncer, for the tests of the service behind it (tests/ops/test_pgbouncer.py); the
## bench without it says why it has no PgBouncer figure.
PGBOUNCER ?= /usr/sbin/pgbouncer
pgbouncer:
	$(call apt_install,$(PGBOUNCER),pgbouncer,the PgBouncer tests)

## Set up, start the embedded services unless URLs are set, migrate, seed on first start,
## and run web (http://127.0.0.1:8000), a Celery worker and beat. Ctrl-C stops them all.
run: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(SERVICES) -- $(PY) tools/run_local.py

## One manage.py command, next to a running `make run` or alone: e.g.
##   make manage ARGS="import_momentum --source path/to/trading.db"
## It finds the embedded servers `make run` (or `make test`) runs from this .data/ and uses them,
## leaving them running; only servers it had to start itself are stopped when the command ends.
## Set the same DATABASE_URL / REDIS_URL as for `make run` when you gave it yours.
manage: install
	DJANGO_DEBUG=$${DJANGO_DEBUG:-true} $(SERVICES) -- $(PY) manage.py $(ARGS)

## Set up, start the embedded services unless URLs are set, then lint, types and the tests.
test: install chromium pgbouncer
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(SERVICES) --fast -- sh -c '$(VENV)/bin/mypy \
		&& DJANGO_SETTINGS_MODULE=atb_site.settings.test \
		   $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null \
		&& $(VENV)/bin/pytest $(PYTEST_ARGS)'


clean:
	rm -rf $(VENV) .data .pytest_cache .mypy_cache .ruff_cache
