# scalebench: the commands the README names. `make up` runs the stack, `make test` runs every test.
SHELL := /bin/bash
# Compose v2 (`docker compose`) where present, else docker-compose 1.29.
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo "docker-compose")
PYTEST ?= python3 -m pytest

.PHONY: up down logs secrets test test-rust test-system test-cluster lint fmt bench

up: secrets ## Build the images and start workload, Prometheus, Grafana and a load run
	$(COMPOSE) up --build -d
	@echo "Grafana: http://127.0.0.1:3000 (admin password: .secrets/grafana-admin-password)  Prometheus: http://127.0.0.1:9090  workload: http://127.0.0.1:8080/docs"

secrets: ## Random Grafana/Prometheus passwords and Prometheus' web config for PROMETHEUS_BIND (docs/security.md)
	scripts/compose-secrets.sh

# HTTPS in compose (compose.tls.yml, docs/tls-deploy.md). The certificate names the service the
# loadgen connects to; the containers run as 65532, so the directory and key must be readable by
# it (a throwaway self-signed key for a local stack, kept in the gitignored secrets directory).
TLS_COMPOSE_DIR ?= $(or $(SCALEBENCH_SECRETS_DIR),.secrets)/tls-compose
.PHONY: tls-compose-cert up-tls
tls-compose-cert: ## Self-signed certificate for host `workload` in .secrets/tls-compose, readable by the containers
	deploy/scripts/tls-secret.sh --host workload --out-dir "$(TLS_COMPOSE_DIR)" --print >/dev/null
	chmod 0755 "$(TLS_COMPOSE_DIR)" && chmod 0644 "$(TLS_COMPOSE_DIR)/tls.crt" "$(TLS_COMPOSE_DIR)/tls.key"

up-tls: secrets tls-compose-cert ## `make up` with the workload serving HTTPS and the loadgen trusting its certificate
	$(COMPOSE) -f docker-compose.yml -f compose.tls.yml up --build -d
	@echo "workload: https://127.0.0.1:8080/docs (curl --cacert $(TLS_COMPOSE_DIR)/tls.crt --resolve workload:8080:127.0.0.1 https://workload:8080/ping)"

down: ## Stop the stack and remove its volumes
	$(COMPOSE) down -v --remove-orphans

logs:
	$(COMPOSE) logs -f --tail=100

test: test-rust test-system test-cluster ## Every test: Rust unit and integration tests, the system tests, then the real-cluster tests

test-rust:
	cargo nextest run --workspace --no-fail-fast

test-system:
	$(PYTEST) -v -rs tests/system

# On a real single-node Kubernetes (deploy/scripts/local-cluster.sh; root and Go needed, skipped
# with the reason elsewhere, never in CI). Starts the cluster unless it is up, stops it at the end
# unless it was up before.
test-cluster:
	$(PYTEST) -v -rs tests/cluster

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt:
	cargo fmt --all

# Fuzzing: cargo-fuzz on the machine's stable toolchain (docs/fuzzing.md says why RUSTC_BOOTSTRAP).
FUZZ_SECONDS ?= 30
FUZZ_TARGETS ?= scenario template threshold report histogram
.PHONY: fuzz fuzz-build
fuzz-build: ## Build the loadgen fuzz targets (installs cargo-fuzz when missing)
	command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
	cd loadgen/fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build --dev --sanitizer none

fuzz: fuzz-build ## Run each loadgen fuzz target for FUZZ_SECONDS (default 30); findings land in loadgen/fuzz/artifacts
	cd loadgen/fuzz && for t in $(FUZZ_TARGETS); do \
	  mkdir -p corpus/$$t && \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run --dev --sanitizer none $$t corpus/$$t seeds/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=512 -timeout=10 -print_final_stats=1 || exit 1; \
	done

# A real single-node Kubernetes built from upstream Go modules, without Minikube (docs/local-cluster.md).
.PHONY: cluster-up cluster-down cluster-images cluster-knative
cluster-up: ## Build (cached) and start the local cluster; then: eval "$$(deploy/scripts/local-cluster.sh env)"
	deploy/scripts/local-cluster.sh up
cluster-knative: ## Install Knative Serving on the local cluster (the scale-to-zero overlay deploy/overlays/knative)
	deploy/scripts/local-cluster.sh knative
cluster-down: ## Stop the local cluster and remove everything it made
	deploy/scripts/local-cluster.sh down
cluster-images: ## Build both images and load them into the local cluster
	SCALEBENCH_CLUSTER=local deploy/scripts/build-load.sh

# Kubernetes on Minikube: one script per step, see deploy/README.md (each script has --help).
.PHONY: minikube-up k8s-images k8s-single k8s-hpa k8s-monitoring k8s-loadgen k8s-down
minikube-up: ## Start Minikube with metrics-server (the HPA needs it)
	deploy/scripts/minikube-up.sh
k8s-images: ## Build both images and load them into Minikube
	deploy/scripts/build-load.sh
k8s-single: ## One replica, no autoscaler: the cluster twin of the single container
	deploy/scripts/apply.sh minikube-single
k8s-hpa: ## The same Deployment under a HorizontalPodAutoscaler (CPU 50%, 1..10)
	deploy/scripts/apply.sh minikube-hpa
k8s-monitoring: ## In-cluster Prometheus and Grafana with the same dashboards
	deploy/scripts/apply.sh monitoring
k8s-loadgen: ## Run the three-client loadgen Job and fetch its reports into reports/
	deploy/scripts/run-loadgen.sh
k8s-down: ## Delete everything the scripts created in the cluster
	deploy/scripts/teardown.sh

.PHONY: experiment experiment-serverless
experiment: ## The seed's headline: 3 clients x N requests against docker, k8s-single and k8s-hpa (bench/experiment.sh --help)
	bench/experiment.sh $(EXPERIMENT_FLAGS)
experiment-serverless: ## The seed's Lambda row: rate steps against docker, k8s-hpa and scale-to-zero k8s-knative, then cold starts (bench/serverless.sh --help)
	bench/serverless.sh $(EXPERIMENT_FLAGS)

.PHONY: compare
compare: ## One scenario against docker, then Minikube single and HPA where a cluster answers
	bench/compare.sh
