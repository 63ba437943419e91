# One command per gate. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
LOCALSTACK_SPEC := localstack-core[base-runtime]==4.13.1 cbor2<6 pyopenssl<26

.DEFAULT_GOAL := help

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: .venv/.installed .localstack/venv/.installed ## create both virtual environments (idempotent)

.venv/.installed: requirements.txt
	test -x .venv/bin/python || python3 -m venv .venv
	.venv/bin/pip install -q --upgrade pip
	.venv/bin/pip install -q -r requirements.txt
	touch $@

.localstack/venv/.installed:
	test -x .localstack/venv/bin/python || python3 -m venv .localstack/venv
	.localstack/venv/bin/pip install -q "$(word 1,$(LOCALSTACK_SPEC))" "$(word 2,$(LOCALSTACK_SPEC))" "$(word 3,$(LOCALSTACK_SPEC))"
	touch $@

services: ## make sure the machine's Postgres and RabbitMQ are running
	scripts/ensure-services.sh

up: setup services ## start the host-mode stack (LocalStack, API, bridge, worker)
	$(PY) -m scripts.hoststack up

down: ## stop everything `make up` started
	$(PY) -m scripts.hoststack down

status: ## show whether the stack is running
	$(PY) -m scripts.hoststack status

demo: up ## load a real TLC file through the stack and print the job summary
	$(PY) -m scripts.client --api-url http://127.0.0.1:$${API_PORT:-8000} upload tests/fixtures/2025-01_head10000_yellow_tripdata_sample.parquet

test: setup services ## run the whole test suite (unit, integration, e2e, faults)
	$(PY) -m pytest

check: setup ## lint
	.venv/bin/ruff check .

bench: setup services ## the benchmark: ingest vs psql \copy vs the old method
	$(PY) -m scripts.bench

package: setup ## build the Lambda package (infra/ vendored) into chalice_app/.chalice/deployments
	rm -rf chalice_app/vendor && mkdir -p chalice_app/vendor
	cp -r infra chalice_app/vendor/infra
	cd chalice_app && ../.venv/bin/chalice package --stage prod --merge-template .chalice/gateway-responses.json ../.run/package

.PHONY: help setup services up down status demo test check bench package
