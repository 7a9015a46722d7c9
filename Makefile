# The two commands: `make run` and `make test`. Everything else is optional.
SHELL := /bin/bash
VENV := .venv
SCALESTACK := $(VENV)/bin/scalestack

.PHONY: install run up down status test test-unit test-integration test-faults test-compose docker-setup bench bench-studies lock clean

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

test: install  ## unit, integration and fault tests (each on a private stack), then the compose stage
	$(VENV)/bin/python -m pytest tests/unit -q
	$(VENV)/bin/python -m pytest tests/integration -q
	$(VENV)/bin/python -m pytest tests/faults -q
	$(MAKE) --no-print-directory test-compose

test-unit: install
	$(VENV)/bin/python -m pytest tests/unit -q

test-integration: install
	$(VENV)/bin/python -m pytest tests/integration -q

test-faults: install  ## faults under load (Locust), on the faults profile's stack; figures in var/faults/results.json
	$(VENV)/bin/python -m pytest tests/faults -q

docker-setup:  ## Docker, docker-compose and the base image, for the compose stack
	SCALESTACK_EXTRA_CA=$${SCALESTACK_EXTRA_CA-/etc/ssl/certs/ca-certificates.crt} bash scripts/docker-setup.sh

test-compose: install docker-setup  ## build the images, `up` the compose stack, smoke and fault tests, `down -v`
	$(VENV)/bin/python -m pytest tests/compose -q; status=$$?; rm -f docker/extra-ca/build-extra-ca.crt; exit $$status

bench: install  ## the social-network workload against the running stack (`make up` first); figures in results/
	$(SCALESTACK) bench

bench-studies: install  ## every study (latency, cache, balance, fanout, scaling, baseline; about 20 min) against the running stack
	$(SCALESTACK) bench all

lock:  ## re-pin every transitive dependency after changing pyproject.toml
	$(VENV)/bin/pip freeze --exclude-editable --exclude scalestack > requirements/constraints.txt

clean: down
	rm -rf var
