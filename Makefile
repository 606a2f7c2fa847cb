# Two entry points (see README): `make demo` and `make test`. Each builds the virtual
# environment first when pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench chaos generate clean prometheus chromium redis robot-demo test-rf-min prod-check

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/autoheal demo

# The Robot Framework example on a real headless Chromium (see README, "Robot Framework").
robot-demo: $(STAMP) chromium
	$(BIN)/python examples/robot/run_demo.py robot-demo-data

# Branch coverage of the package is measured on every run, with a floor (see pyproject.toml).
test: $(STAMP) prometheus chromium redis
	$(BIN)/python -m pytest --cov=autoheal_otel --cov-report=term:skip-covered

# The whole deployment on loopback (see README, "Deploying"): 3 robot hosts, the fleet's Redis
# from deploy/redis, serve over TLS, a real Prometheus with the shipped rules; about a minute.
prod-check: $(STAMP) prometheus redis
	$(BIN)/python deploy/prod_check.py

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

# The fleet tests run a real Redis (Debian's redis-server; each test session starts its own).
redis:
	@command -v redis-server >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's redis-server (the fleet tests run it)"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null || \
	    echo "redis-server could not be installed: the fleet tests will be skipped"; \
	  else \
	    echo "redis-server is not installed: the fleet tests will be skipped (sudo apt-get install redis-server)"; \
	  fi; }

# Real browsers for the tests: the report's screenshot test (chromium) and the Robot Framework
# tests (chromium + chromium-driver), Debian's packages.
chromium:
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium and chromium-driver (the browser tests run them)"; \
	    apt-get update -qq >/dev/null && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null || \
	    echo "chromium could not be installed: the real-browser tests will be skipped"; \
	  else \
	    echo "chromium is not installed: the real-browser tests will be skipped (sudo apt-get install chromium chromium-driver)"; \
	  fi; }

lint: $(STAMP)
	$(BIN)/ruff check autoheal_otel tests bench dashboards examples deploy
	$(BIN)/ruff format --check autoheal_otel tests bench dashboards examples deploy
	$(BIN)/mypy

# The Robot Framework tests again under the lowest supported RF (7.1.1), in their own venv.
RF_MIN := 7.1.1
RF_MIN_VENV := .venv-rf-min
$(RF_MIN_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(RF_MIN_VENV)
	$(RF_MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(RF_MIN_VENV)/bin/python -m pip install --quiet -e '.[robot-test]' 'robotframework==$(RF_MIN)'
	touch $@

test-rf-min: $(RF_MIN_VENV)/.installed chromium
	$(RF_MIN_VENV)/bin/python -m pytest tests/test_robot_listener.py tests/test_robot_steps.py tests/test_robot_pabot.py tests/test_robot_browser.py

# Every benchmark under bench/ (the chaos run has its own target); each removes what it writes
# under the temporary directory.
bench: $(STAMP)
	@for script in $(filter-out bench/chaos.py bench/_chaos_fleet.py,$(wildcard bench/*.py)); do \
	  echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

# Random kill -9 of writers, compaction, snapshots and rollbacks, and of the fleet's
# redis-server, then exactly-once, store, replay and hook-latency checks (a few minutes on
# 2 cores; not part of `make test`).
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py --kills 1000

# Regenerate the committed artifacts that tests compare against (policy, schema, diagram).
generate: $(STAMP)
	$(BIN)/python -c "from autoheal_otel import PolicyConfig; PolicyConfig(**{'\$$schema': './auto_heal_policy.schema.json'}).dump('config/auto_heal_policy.json')"
	$(BIN)/autoheal policy schema > config/auto_heal_policy.schema.json
	$(BIN)/python dashboards/generate.py
	$(BIN)/python dashboards/alerts.py
	$(BIN)/python -c "import re, pathlib; from autoheal_otel.core._transitions import mermaid; p = pathlib.Path('README.md'); p.write_text(re.sub(r'\x60\x60\x60mermaid\n.*?\x60\x60\x60', lambda m: '\x60\x60\x60mermaid\n' + mermaid() + '\n\x60\x60\x60', p.read_text(), count=1, flags=re.S))"

# Everything the targets above leave in the checkout (the data of both demos included).
clean:
	rm -rf $(VENV) $(RF_MIN_VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage \
	  demo-data robot-demo-data report.md report.html
