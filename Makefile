# Two entry points (see README): `make demo` and `make test`. Each builds the virtual
# environment first when pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench chaos generate clean prometheus

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/autoheal demo

test: $(STAMP) prometheus
	$(BIN)/python -m pytest

# The dashboard and alert tests run a real Prometheus (Debian's package).
prometheus:
	@command -v prometheus >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's prometheus (the tests run it)"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null; \
	  else \
	    echo "prometheus is not installed: its tests will be skipped (sudo apt-get install prometheus)"; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check autoheal_otel tests bench dashboards
	$(BIN)/ruff format --check autoheal_otel tests bench dashboards
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/hot_path.py

# Random kill -9 of writers, compaction, snapshots and rollbacks, then exactly-once, store and
# replay checks (a few minutes on 2 cores; not part of `make test`).
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py --kills 1000

# Regenerate the committed artifacts that tests compare against (policy, schema, diagram).
generate: $(STAMP)
	$(BIN)/python -c "from autoheal_otel import PolicyConfig; PolicyConfig(**{'\$$schema': './auto_heal_policy.schema.json'}).dump('config/auto_heal_policy.json')"
	$(BIN)/autoheal policy schema > config/auto_heal_policy.schema.json
	$(BIN)/python dashboards/generate.py
	$(BIN)/python dashboards/alerts.py
	$(BIN)/python -c "import re, pathlib; from autoheal_otel._transitions import mermaid; p = pathlib.Path('README.md'); p.write_text(re.sub(r'\x60\x60\x60mermaid\n.*?\x60\x60\x60', lambda m: '\x60\x60\x60mermaid\n' + mermaid() + '\n\x60\x60\x60', p.read_text(), count=1, flags=re.S))"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
