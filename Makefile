# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test bench lint system-deps venv clean demo tour

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalled only when the package metadata changes (the stamp file is newer otherwise).
$(VENV)/.installed: $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -e ".[test]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import django_msm, pytest_django, gunicorn, selenium"
	touch $@

venv: $(VENV)/.installed

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

test: system-deps venv
	scripts/fetch-django-tests $(PY)
	$(PY) -m pytest

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

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
