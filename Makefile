# Paktum: `make run` runs it on this machine, `make test` runs the tests. Both set themselves up.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PYTEST_ARGS ?=

.PHONY: run test lint format bench-hasher bench-groups bench-variants sync clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen
	touch $@

sync: $(VENV)/.synced

run: sync
	$(VENV)/bin/paktum up

test: sync
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/paktum-common/src services/*/src src

format: sync
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-groups: sync
	$(VENV)/bin/python bench/groups.py

bench-variants: bench-groups  # the name the cleanup issue uses

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
