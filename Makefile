# The two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
VENV := .venv
SCALESTACK := $(VENV)/bin/scalestack

.PHONY: install run up down status test test-unit test-integration test-faults lock clean

install:  ## install missing Debian packages and the virtualenv
	@bash scripts/bootstrap.sh

run: install  ## start the whole stack in the foreground (Ctrl-C stops it)
	@$(SCALESTACK) run

up: install  ## start the stack in the background
	@$(SCALESTACK) up

down:  ## stop the background stack
	@$(SCALESTACK) down

status:
	@$(SCALESTACK) status

test: install  ## unit tests, integration tests, then fault tests under load (each suite on a private stack)
	$(VENV)/bin/python -m pytest tests/unit -q
	$(VENV)/bin/python -m pytest tests/integration -q
	$(VENV)/bin/python -m pytest tests/faults -q

test-unit: install
	$(VENV)/bin/python -m pytest tests/unit -q

test-integration: install
	$(VENV)/bin/python -m pytest tests/integration -q

test-faults: install  ## faults under load (Locust), on the faults profile's stack; figures in var/faults/results.json
	$(VENV)/bin/python -m pytest tests/faults -q

lock:  ## re-pin every transitive dependency after changing pyproject.toml
	$(VENV)/bin/pip freeze --exclude-editable --exclude scalestack > requirements/constraints.txt

clean: down
	rm -rf var
