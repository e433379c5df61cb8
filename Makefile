# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The second suite: Django 6.1 on Python >= 3.12 (scripts/find-python looks for one unless named).
PYTHON_DJ61 ?=
VENV_DJ61 := .venv-dj61
# `make test SUITES=dj61` runs one suite only (lint always runs).
SUITES ?= dj52 dj61

.PHONY: test bench lint mypy system-deps venv venv-dj61 clean demo tour tox
.PHONY: $(foreach suite,dj52 dj61,lint-$(suite) mypy-$(suite) test-$(suite))

# Reinstalled only when the package metadata or the pins change (the stamp file is newer otherwise).
$(VENV)/.installed: setup.cfg pyproject.toml scripts/make-venv scripts/pins/dj52.txt
	scripts/make-venv $(VENV) $(PYTHON) scripts/pins/dj52.txt
	touch $@

$(VENV_DJ61)/.installed: setup.cfg pyproject.toml scripts/make-venv scripts/pins/dj61.txt
	python="$(PYTHON_DJ61)"; [ -n "$$python" ] || python=$$(scripts/find-python 3.12) || exit 1; \
	scripts/make-venv $(VENV_DJ61) "$$python" scripts/pins/dj61.txt
	touch $@

venv: $(VENV)/.installed

venv-dj61: $(VENV_DJ61)/.installed

# memcached, redis-server, redis-sentinel, nginx, chromium and chromedriver from Debian's packages: installed when missing and root, else a clear message.
system-deps:
	@missing=""; PATH="$$PATH:/usr/sbin"; for bin in memcached redis-server redis-sentinel nginx chromium chromedriver openssl; do command -v $$bin >/dev/null || missing="$$missing $$bin"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached redis-server redis-sentinel nginx chromium chromium-driver openssl >/dev/null; \
	  else \
	    echo "missing:$$missing. Install them (Debian: sudo apt-get install -y memcached redis-server redis-sentinel nginx chromium chromium-driver openssl) and run again." >&2; exit 1; \
	  fi; \
	fi

# Lint, then the whole suite on Django 5.2 (Python 3.11, .venv) and on Django 6.1 (Python >= 3.12,
# .venv-dj61), one after the other (the suite has timing margins: two at once would starve both).
# Every part runs even after one failed, so a single run shows them all; any failure fails it.
test: system-deps
	@failed=""; \
	for suite in $(SUITES); do $(MAKE) --no-print-directory lint-$$suite || failed="$$failed lint-$$suite"; done; \
	for suite in $(SUITES); do $(MAKE) --no-print-directory test-$$suite || failed="$$failed test-$$suite"; done; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi; \
	echo "make test: lint and suites passed: $(SUITES)"

# Per suite ($(1)) and its venv ($(2)): lint-SUITE is ruff on everything and mypy (with the
# django-stubs release of that Django) on django_msm/, configured in pyproject.toml; the stubs'
# plugin loads tests.settings, which needs Django's test tree. test-SUITE is the whole suite.
define suite_rules
lint-$(1): $(2)/.installed
	$(2)/bin/ruff check .
	@$(MAKE) --no-print-directory mypy-$(1)

mypy-$(1): $(2)/.installed
	scripts/fetch-django-tests $(2)/bin/python
	$(2)/bin/python -m mypy --cache-dir $(2)/mypy-cache

test-$(1): system-deps $(2)/.installed
	scripts/fetch-django-tests $(2)/bin/python
	$(2)/bin/python -m pytest
endef
$(eval $(call suite_rules,dj52,$(VENV)))
$(eval $(call suite_rules,dj61,$(VENV_DJ61)))

# The benchmark report (docs/benchmarks.md and its plot): starts and stops its own memcached and
# redis-server processes (bench/run.py). Its extra (matplotlib) is installed here only.
$(VENV)/.bench-installed: $(VENV)/.installed setup.cfg
	$(PY) -m pip install --quiet -e ".[test,bench]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import matplotlib"
	touch $@

bench: system-deps venv $(VENV)/.bench-installed
	BENCH_COMMAND="make bench" $(PY) -m bench.run

# Failover under real HTTP load, django_msm next to Django's engines and django-redis (chaos/);
# prints the table and writes docs/chaos.md. `$(PY) -m chaos --help` for --schedule/--engines.
.PHONY: chaos
chaos: system-deps venv
	CHAOS_COMMAND="make chaos" $(PY) -m chaos

# Counting speed and memory of msm_status: 1,000,000 sessions on 2 memcached nodes.
.PHONY: bench-count
bench-count: system-deps venv
	$(PY) -m bench.count_sessions

# Repair throughput and peak memory (issue 11): 100,000 and 1,000,000 sessions on 2 memcached
# nodes, one restarted empty, restored by one pass at the default REPAIR_RATE and unbounded.
.PHONY: bench-repair
bench-repair: system-deps venv
	$(PY) -m bench.repair

# The demo cluster (2 memcached nodes, 2 gunicorn instances of testproject, nginx) and its narrated
# tour, then serving until Ctrl-C; `make tour` runs the tour alone and fails if a step misbehaved.
demo: system-deps venv
	$(PY) -m demo

tour: system-deps venv
	$(PY) -m demo --tour-only --mode all

# `make lint` and `make mypy` check with the default venv (Django 5.2 on Python 3.11).
lint: lint-dj52

mypy: mypy-dj52

# tox's matrix (tox.ini) with the interpreters this machine has: `make tox ARGS="-e py313-dj61"`.
tox:
	scripts/tox $(ARGS)

clean:
	rm -rf $(VENV) $(VENV_DJ61) .tox .cache build dist *.egg-info
