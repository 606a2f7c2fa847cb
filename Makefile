# Two entry points (see README): `make demo` and `make test`. Each builds the virtual
# environment first when pyproject.toml changed, so a fresh clone needs nothing else.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench generate clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/autoheal demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check autoheal_otel tests bench
	$(BIN)/ruff format --check autoheal_otel tests bench
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/hot_path.py

# Regenerate the committed artifacts that tests compare against (policy, schema, diagram).
generate: $(STAMP)
	$(BIN)/python -c "from autoheal_otel import PolicyConfig; PolicyConfig(**{'\$$schema': './auto_heal_policy.schema.json'}).dump('config/auto_heal_policy.json')"
	$(BIN)/autoheal policy schema > config/auto_heal_policy.schema.json
	$(BIN)/python -c "import re, pathlib; from autoheal_otel._transitions import mermaid; p = pathlib.Path('README.md'); p.write_text(re.sub(r'\x60\x60\x60mermaid\n.*?\x60\x60\x60', lambda m: '\x60\x60\x60mermaid\n' + mermaid() + '\n\x60\x60\x60', p.read_text(), count=1, flags=re.S))"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
