# scalebench: the commands the README names. `make up` runs the stack, `make test` runs every test.
SHELL := /bin/bash
# Compose v2 (`docker compose`) where present, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "docker-compose")
PYTEST ?= python3 -m pytest

.PHONY: up down logs test test-rust test-system lint fmt bench

up: ## Build the images and start workload, Prometheus, Grafana and a load run
	$(COMPOSE) up --build -d
	@echo "Grafana: http://127.0.0.1:3000  Prometheus: http://127.0.0.1:9090  workload: http://127.0.0.1:8080/docs"

down: ## Stop the stack and remove its volumes
	$(COMPOSE) down -v --remove-orphans

logs:
	$(COMPOSE) logs -f --tail=100

test: test-rust test-system ## Every test: Rust unit and integration tests, then the system tests

test-rust:
	cargo nextest run --workspace --no-fail-fast

test-system:
	$(PYTEST) -v -rs tests/system

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all
