# relay-store developer commands. `make test` works from a fresh clone: it
# creates the virtualenv, installs the Python dependencies, builds the native
# module, installs redis-server when it is missing, then runs cargo test and pytest.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.deps-installed

.PHONY: all venv deps build redis-server test test-rust test-python demo bench bench-quick clean

all: test

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "maturin>=1.7,<2" "pytest>=8" "pytest-asyncio>=0.24" "hypothesis>=6.100" "mypy>=1.10" "redis>=5" hiredis orjson
	touch $(STAMP)

venv: $(STAMP)

build: $(STAMP)
	$(VENV)/bin/maturin develop --release --quiet

# Tests start their own redis-server (and make TLS certificates with openssl);
# install what the machine lacks.
redis-server:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test-rust:
	cargo test --quiet

test-python: build redis-server
	$(PY) -m pytest -q

test: test-rust test-python

demo: build
	$(PY) examples/demo.py

bench: build redis-server
	$(PY) benchmarks/run.py

bench-quick: build redis-server
	$(PY) benchmarks/run.py --quick

clean:
	rm -rf $(VENV) target .pytest_cache .mypy_cache .hypothesis
