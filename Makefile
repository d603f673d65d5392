# ragops.platform: one entry point for a fresh Debian 12 host (root, no systemd).
#   make up VERSION=1.0.0   bring the service up with that version deployed
#   make test               run every test
SHELL := /bin/bash
.DEFAULT_GOAL := help
VERSION ?= 1.0.0
PYTHON := .venv/bin/python
PYTEST := $(PYTHON) -m pytest

.PHONY: help setup up down image test test-app bench

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

setup: ## Install host packages, start Docker, create .venv with pinned tools
	scripts/host/install-host-packages.sh
	scripts/host/start-docker.sh
	scripts/host/setup-python.sh

up: setup ## Build images and bring the service up with VERSION deployed
	scripts/dev/service-up.sh $(VERSION)

down: ## Remove the running service (PURGE=1 also removes data volumes)
	scripts/dev/service-down.sh

image: setup ## Build the app image for VERSION
	scripts/host/build-app-image.sh $(VERSION)

test: setup test-app ## Run every test

test-app: ## The reference service's tests (unit, integration, image)
	cd app && ../$(PYTEST) -q -p no:cacheprovider

bench: setup ## Benchmark the app image (prints p50/p95/p99, req/s, errors, memory)
	bench/app_query_bench.sh $(VERSION)
