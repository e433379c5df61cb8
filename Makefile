# The whole set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: test bench lint system-deps venv clean

$(PY):
	$(PYTHON) -m venv $(VENV)

venv: $(PY)
	$(PY) -m pip install --quiet --upgrade pip 2>&1 | grep -v "is ignored" || true
	$(PY) -m pip install --quiet -e ".[test]" 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import django_msm, pytest_django"

# memcached and redis-server from Debian's packages: installed when missing and root, else a clear message.
system-deps:
	@missing=""; for bin in memcached redis-server; do command -v $$bin >/dev/null || missing="$$missing $$bin"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq memcached redis-server >/dev/null; \
	  else \
	    echo "missing:$$missing. Install them (Debian: sudo apt-get install -y memcached redis-server) and run again." >&2; exit 1; \
	  fi; \
	fi

test: system-deps venv
	scripts/fetch-django-tests $(PY)
	$(PY) -m pytest

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .cache build dist *.egg-info
