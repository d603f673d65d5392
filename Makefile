# ragops.platform: one entry point for a fresh Debian 12 host (root, no systemd).
#   make up VERSION=1.0.0   bring the whole stack up with that version live
#   make test               run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help
VERSION ?= 1.0.0
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/collections

.PHONY: help setup up down image deploy rollback status test test-checks test-app test-lint test-sanity test-units test-molecule bench bench-release bench-reindex bench-nginx-metrics bench-nginx-reload

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## Install host packages, start Docker, create .venv with pinned tools
	scripts/host/install-host-packages.sh
	scripts/host/start-docker.sh
	scripts/host/setup-python.sh

up: setup ## Provision the whole stack (site.yml); VERSION goes live on a host that has no live color yet
	ansible-playbook site.yml -e ragops_app_version=$(VERSION)

down: ## Remove the stack (containers, network); PURGE=1 also removes the data volumes
	ansible-playbook teardown.yml $(if $(filter 1,$(PURGE)),-e ragops_teardown_remove_data=true)

image: setup ## Build the app image for VERSION
	scripts/host/build-app-image.sh $(VERSION)

deploy: ## Ship VERSION blue/green on a running stack (deploy.yml)
	ansible-playbook deploy.yml -e version=$(VERSION)

rollback: ## Make the previous version live again (rollback.yml)
	ansible-playbook rollback.yml

status: ## Live and idle colors, health, history and lock (status.yml)
	ansible-playbook status.yml

test: setup test-checks test-molecule ## Run every test

test-checks: ## The tests that need no Molecule stack, two side by side: app then units, lint then sanity
	scripts/ci/checks.sh

test-app: ## The reference service's tests (unit, integration, image)
	cd app && python -m pytest -q -p no:cacheprovider

test-lint: ## ansible-lint, production profile
	ansible-lint

test-sanity: ## ansible-test sanity on the collection
	scripts/ci/ansible-sanity.sh

test-units: ## Unit tests of the collection's plugins, modules and roles, and of the second example workload
	PYTHONPATH=$(CURDIR)/collections python -m pytest -q -p no:cacheprovider tests/unit examples/notes-api/tests

test-molecule: ## Every Molecule scenario: default (the stack, then blue/green releases on it), fleet (three Docker-in-Docker hosts over SSH) beside anyapp (another workload), then faults (bad releases and crash drills)
	scripts/ci/molecule.sh

bench: setup ## Benchmark the app image (prints p50/p95/p99, req/s, errors, memory)
	bench/app_query_bench.sh $(VERSION)

bench-release: setup ## Benchmark the release engine on a running stack (make up): deploy, no-op, rollback, switches
	scripts/host/build-app-image.sh 1.0.0
	scripts/host/build-app-image.sh 1.1.0
	python bench/release_bench.py $(BENCH_ARGS)

bench-reindex: setup ## Re-index throughput (chunks/s, wall time for 10,000 chunks) and memory, on a private redis-server
	python bench/reindex_bench.py $(BENCH_ARGS)

bench-nginx-metrics: setup ## Cost of nginx's traffic metrics on a running stack: wrk req/s and p95 with them on and off
	bench/nginx_metrics_cost.sh

bench-nginx-reload: setup ## Failed requests per nginx reload, TLS renewal and switch, for a harsh and a pooled client (TLS stack)
	python bench/nginx_reload_cost.py $(BENCH_ARGS)
