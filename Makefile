# Vigil's Makefile, in kubebuilder's conventions. `make help` lists the targets.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

# Tools live in a cache outside the repo, one directory per version (hack/tools.sh).
TOOLS_BIN := $(shell hack/tools.sh bin-path)
ASSETS := $(shell hack/tools.sh assets-path)
CONTROLLER_GEN := $(TOOLS_BIN)/controller-gen
GOLANGCI_LINT := $(TOOLS_BIN)/golangci-lint
HELM_DOCS := $(TOOLS_BIN)/helm-docs
CRD_REF_DOCS := $(TOOLS_BIN)/crd-ref-docs
MONITORING_CRDS := $(shell hack/tools.sh crds-path)

# Extra flags for `go test`, e.g. make test GOTEST_FLAGS='-run TestFoo'.
GOTEST_FLAGS ?=

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-15s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: generate
generate: tools ## Generate deepcopy code for the API types.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: tools ## Generate the CRD and RBAC under config/, copy them into the chart; the chart's README, docs/operations.md's tables, docs/reference/api.md.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=vigil-controller paths=./controllers/... output:rbac:artifacts:config=config/rbac/controller
	$(CONTROLLER_GEN) rbac:roleName=vigil-agent paths=./agent/... output:rbac:artifacts:config=config/rbac/agent
	mkdir -p charts/vigil/files/crds
	rm -f charts/vigil/files/crds/*.yaml
	cp config/crd/bases/*.yaml charts/vigil/files/crds/
	cp config/rbac/controller/role.yaml charts/vigil/files/controller-role.yaml
	cp config/rbac/agent/role.yaml charts/vigil/files/agent-role.yaml
	$(HELM_DOCS) --chart-search-root charts --template-files README.md.gotmpl --log-level warning
	go run ./hack/docgen docs/operations.md
	$(CRD_REF_DOCS) --source-path api/v1alpha1 --config hack/crd-ref-docs.yaml --renderer markdown \
	  --output-path docs/reference/api.md --log-level WARN

.PHONY: verify
verify: tools ## Fail when generated code or manifests are stale.
	CONTROLLER_GEN=$(CONTROLLER_GEN) hack/verify-generated.sh

.PHONY: lint
lint: ## go vet, gofmt and golangci-lint.
	go vet ./...
	@# The files git tracks or would add, as they are in the tree: a move not yet staged still counts.
	@files=$$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*'); \
	  unformatted=$$(for f in $$files; do if [[ -f $$f ]]; then echo "$$f"; fi; done | xargs -r gofmt -l); \
	  if [[ -n "$$unformatted" ]]; then echo "gofmt would change: $$unformatted (run: gofmt -w .)"; exit 1; fi
	hack/tools.sh install-lint
	$(GOLANGCI_LINT) run ./...

##@ Build

# The release is the chart's appVersion, so the chart's default image tag names this build.
VERSION ?= $(shell sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$$/\1/p' charts/vigil/Chart.yaml)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
# One static, reproducible build line for bin/vigil, the image and the Dockerfile.
LDFLAGS := -s -w -X vigil.dev/vigil/internal/version.Version=$(VERSION) -X vigil.dev/vigil/internal/version.Commit=$(COMMIT)
GO_BUILD := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"

.PHONY: build
build: ## Build bin/vigil (static, version stamped).
	$(GO_BUILD) -o bin/vigil ./cmd/vigil

# The image is named $(IMAGE):$(VERSION), the chart's default image.
IMAGE ?= ghcr.io/vigil-dev/vigil
# Where `make image` writes linux_<arch>/vigil and vigil-image.tar (test/image uses a temp dir).
IMAGE_DIR ?= bin
CA_BUNDLE := /etc/ssl/certs/ca-certificates.crt

.PHONY: lab
lab: ## Build bin/lab, the lab's CLI, and bin/labhelper, the processes the lab runs in its namespaces.
	go build -o bin/lab ./hack/lab
	go build -o bin/labhelper ./test/labhelper

.PHONY: image
image: IMAGE_STARTED = $(shell date +%s%N)
image: ## Build bin/vigil-image.tar, a linux/amd64+arm64 OCI image (oci-archive), without a daemon (IMAGE=...).
	@test -f $(CA_BUNDLE) || { echo "make image: $(CA_BUNDLE) is missing: apt-get install ca-certificates" >&2; exit 1; }
	GOOS=linux GOARCH=amd64 $(GO_BUILD) -o $(IMAGE_DIR)/linux_amd64/vigil ./cmd/vigil
	GOOS=linux GOARCH=arm64 $(GO_BUILD) -o $(IMAGE_DIR)/linux_arm64/vigil ./cmd/vigil
	@SOURCE_DATE_EPOCH=$${SOURCE_DATE_EPOCH:-$$(git log -1 --format=%ct 2>/dev/null || echo 0)} \
	  go run ./hack/image -bin-dir $(IMAGE_DIR) -out $(IMAGE_DIR)/vigil-image.tar -platforms linux/amd64,linux/arm64 \
	    -repository $(IMAGE) -version $(VERSION) -commit $(COMMIT) -ca-bundle $(CA_BUNDLE) -started $(IMAGE_STARTED)

##@ Test

.PHONY: test
test: tools verify lint ## Run every test: unit, API validation and controller tests against a real kube-apiserver.
	@echo "== go test (etcd and kube-apiserver from $(ASSETS)) =="
	KUBEBUILDER_ASSETS=$(ASSETS) VIGIL_TOOLS_BIN=$(TOOLS_BIN) VIGIL_MONITORING_CRDS=$(MONITORING_CRDS) go test -count=1 -timeout 40m -v $(GOTEST_FLAGS) ./...
	@$(MAKE) --no-print-directory fuzz FUZZTIME=10s

# Every fuzz target, as package:target.
FUZZ_TARGETS := ./agent:FuzzDecide ./controllers:FuzzElect ./internal/keepalived:FuzzConvert ./internal/keepalived:FuzzParse
FUZZTIME ?= 5m

.PHONY: fuzz
fuzz: ## Fuzz the agent's decision, the election and the keepalived converter (FUZZTIME=5m each; make test runs 10s each).
	@for t in $(FUZZ_TARGETS); do \
	  echo "== fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
	  KUBEBUILDER_ASSETS=$(ASSETS) go test -run='^$$' -fuzz="^$${t#*:}$$" -fuzztime=$(FUZZTIME) $${t%%:*} || exit 1; \
	done

##@ Benchmarks

TRIALS ?= 20
SYSTEMS ?= vigil,keepalived-default,keepalived-tuned
SCENARIOS ?= node-crash,service-down,planned

.PHONY: bench-failover
bench-failover: tools lab ## Failover benchmark in the lab (TRIALS=20 SYSTEMS=... SCENARIOS=... NODES=3 LOGS=dir AUDIT=1): table, docs/bench/failover.json, docs/benchmarks.md.
	KUBEBUILDER_ASSETS=$(ASSETS) bin/lab bench-failover --trials $(TRIALS) --systems $(SYSTEMS) --scenarios $(SCENARIOS) \
	  --nodes $(or $(NODES),3) $(if $(LOGS),--logs $(LOGS)) $(if $(AUDIT),--audit)

.PHONY: bench-announce
bench-announce: lab ## How soon a client's ARP/ND entry follows a moved VIP (MOVES=20), with the no-announcement baseline.
	bin/lab bench-announce --moves $(or $(MOVES),20)

.PHONY: bench-probes
bench-probes: lab ## CPU, RSS, goroutines and FDs of 100 VIPs x 3 checks at 1 s, shared and distinct targets (VIPS=100 DURATION=60s).
	bin/lab bench-probes --vips $(or $(VIPS),100) --for $(or $(DURATION),60s)
	bin/lab bench-probes --vips $(or $(VIPS),100) --for $(or $(DURATION),60s) --distinct

.PHONY: bench-apply
bench-apply: tools lab ## VirtualIPs applied one by one to a 3-node lab, time from the create call to the first answer (VIPS=50 per variant): docs/bench/apply.json, docs/benchmarks.md.
	KUBEBUILDER_ASSETS=$(ASSETS) bin/lab bench-apply --vips $(or $(VIPS),50)

BURNERS ?= 2,8,64
STARVATION_SYSTEMS ?= vigil,keepalived-tuned

.PHONY: bench-starvation
bench-starvation: tools lab ## CPU burners on every node, no fault: false failovers and time without holder, Vigil and keepalived-tuned (BURNERS=2,8,64 DURATION=60s STARVATION_SYSTEMS=... LOGS=dir): docs/bench/starvation.json, docs/benchmarks.md.
	KUBEBUILDER_ASSETS=$(ASSETS) bin/lab bench-starvation --burners $(BURNERS) --for $(or $(DURATION),60s) \
	  --systems $(STARVATION_SYSTEMS) $(if $(LOGS),--logs $(LOGS))

RUNS ?= 1000x50,300x3
CRASHES ?= 3

.PHONY: bench-scale
bench-scale: tools lab ## 1000 VirtualIPs over 50 real agents with node crashes, then 300 over 3 (RUNS=1000x50,300x3 CRASHES=3): docs/bench/scale.json, docs/benchmarks.md.
	KUBEBUILDER_ASSETS=$(ASSETS) bin/lab bench-scale --runs $(RUNS) --crashes $(CRASHES)

# make chaos DURATION=10m SEED=42 LOGS=/tmp/chaos-logs: DURATION is how long faults are injected
# (Vigil's start and the final settle come on top); SEED, when given, replays a schedule (the report
# names each run's seed); LOGS, when given, keeps the processes' logs there.
.PHONY: chaos
chaos: tools build lab ## Random real faults in a 4-node lab, invariants checked all along (DURATION=10m SEED=... LOGS=dir): docs/bench/chaos.json and a summary.
	KUBEBUILDER_ASSETS=$(ASSETS) VIGIL_TOOLS_BIN=$(TOOLS_BIN) bin/lab chaos --vigil bin/vigil --for $(or $(DURATION),10m) \
	  $(if $(SEED),--seed $(SEED)) $(if $(LOGS),--logs $(LOGS)) --out docs/bench/chaos.json

##@ Demo

.PHONY: demo
demo: tools build lab ## A 3-node lab with a real API server, Vigil, the sample VIPs and a client's view.
	KUBEBUILDER_ASSETS=$(ASSETS) bin/lab demo --vigil bin/vigil

##@ Tools

.PHONY: tools
tools: ## Build or reuse kube-apiserver, kubectl, etcd, controller-gen, helm, kubeconform (cached by version).
	hack/tools.sh install

.PHONY: assets-path
assets-path: ## Print the directory holding etcd, kube-apiserver and kubectl (for KUBEBUILDER_ASSETS).
	@echo $(ASSETS)
