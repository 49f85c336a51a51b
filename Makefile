# mackerel-plugin-ecs-gostats
BIN     := mackerel-plugin-ecs-gostats
# The tag without its "v" when HEAD is tagged (as goreleaser's {{.Version}}), else the VERSION file.
VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null | sed 's/^v//' | grep . || cat VERSION)
LDFLAGS := -s -w -X main.version=$(VERSION)

# Tools the tests, the release checks and the bench run, each pinned to one version here and nowhere else:
#   TOOL_<name> := <module>@<version> [<package directory inside the module>]
# built from the Go module proxy into $(TOOLS) (gitignored), once, by the one rule in the tools section.
TOOLS                        ?= .cache/bin
TOOL_mackerel-agent          := github.com/mackerelio/mackerel-agent@v0.87.0
TOOL_mkr                     := github.com/mackerelio/mkr@v0.65.0
TOOL_mackerel-plugin-gostats := github.com/mackerelio/mackerel-agent-plugins@v0.91.0 mackerel-plugin-gostats
# `make generate` only (internal/otlppb):
TOOL_buf                     := github.com/bufbuild/buf@v1.75.0 cmd/buf
TOOL_protoc-gen-go           := google.golang.org/protobuf@v1.36.12 cmd/protoc-gen-go
TOOL_protoc-gen-go-vtproto   := github.com/planetscale/vtprotobuf@v0.6.0 cmd/protoc-gen-go-vtproto
# The OpenTelemetry Collector of the OTLP tests is the one tool with a main of the project's own: its
# module tools/otelcol pins its versions (go.mod, go.sum); $(TOOLS)/otelcol below builds it.

.PHONY: build
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## --- generated code ---
# The OTLP metrics messages of the OTLP output (internal/otlppb): Go types (protoc-gen-go, the same
# version as google.golang.org/protobuf in go.mod) and their marshaling and sizing (vtprotobuf), made
# from the opentelemetry-proto files in internal/otlppb/proto. The generated files are committed; run
# this after changing the .proto files, buf.gen.yaml or one of the three tools' versions.
.PHONY: generate
generate: $(TOOLS)/buf $(TOOLS)/protoc-gen-go $(TOOLS)/protoc-gen-go-vtproto
	cd internal/otlppb && PATH=$(abspath $(TOOLS)):$$PATH buf generate

## --- test / demo (integration) ---
GOTESTFLAGS ?=

.PHONY: test demo
# Unit tests, integration tests on a real Docker Engine (scripts/with-dockerd.sh starts a private
# dockerd if none answers) and under a real mackerel-agent, and the release zips under the real mkr:
# every tool and artifact a test needs is passed to it, so under CI nothing skips.
test: $(TOOLS)/mackerel-agent $(TOOLS)/mackerel-plugin-gostats $(TOOLS)/mkr $(TOOLS)/otelcol dist
	go vet ./...
	MACKEREL_AGENT_BIN=$(abspath $(TOOLS)/mackerel-agent) GOSTATS_BIN=$(abspath $(TOOLS)/mackerel-plugin-gostats) \
	OTELCOL_BIN=$(abspath $(TOOLS)/otelcol) \
	MKR_BIN=$(abspath $(TOOLS)/mkr) DIST_DIR=$(abspath $(DIST_DIR)) DIST_VERSION=$(DIST_VERSION) \
		scripts/with-dockerd.sh go test -p 1 -count=1 $(GOTESTFLAGS) ./...

# Starts a few sample ECS-like tasks, runs the plugin over them and shows its output, then cleans up.
demo:
	scripts/with-dockerd.sh scripts/demo.sh

## --- dist / release ---
# Release zips in the layout `mkr plugin install` downloads:
#   dist/mackerel-plugin-ecs-gostats_linux_<arch>.zip holding the executable, README.md and LICENSE at the top.
DIST_DIR     := dist
DIST_ARCHS   := amd64 arm64
DIST_VERSION := $(VERSION)

.PHONY: dist test-dist
dist:
	@command -v zip >/dev/null || { apt-get update -q && apt-get install -y -q zip; }
	rm -rf $(DIST_DIR)
	set -e; for arch in $(DIST_ARCHS); do \
		d=$(DIST_DIR)/$(BIN)_linux_$$arch; mkdir -p $$d; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch go build -trimpath \
			-ldflags "-s -w -X main.version=$(DIST_VERSION)" -o $$d/$(BIN) .; \
		cp README.md LICENSE $$d/; \
		(cd $$d && zip -q -X ../$(BIN)_linux_$$arch.zip $(BIN) README.md LICENSE); \
	done
	@ls -l $(DIST_DIR)/*.zip

# Installs each zip with the real mkr into a temporary prefix and runs what it installed, and pushes
# examples/dashboard.json with mkr to a loopback stand-in for the API (dist_test.go). `make test` runs
# the same tests with the rest.
test-dist: dist $(TOOLS)/mkr
	MKR_BIN=$(abspath $(TOOLS)/mkr) DIST_DIR=$(abspath $(DIST_DIR)) DIST_VERSION=$(DIST_VERSION) \
		go test -count=1 -v -run '^TestDist' . > $(DIST_DIR)/test-dist.log 2>&1; rc=$$?; cat $(DIST_DIR)/test-dist.log; \
		test $$rc -eq 0 && ! grep -q -- '--- SKIP' $(DIST_DIR)/test-dist.log

## --- bench ---
# `make bench`: wall time, CPU time and peak RSS of full runs of the built plugin, side by side with the
# shell loop it replaces and a minimal floor, on 30 real tasks and on 100/300/1000 stand-in targets, the
# same with the OTLP push to a real collector, plus a profile (bench/run.sh; BENCH_SCENARIOS, BENCH_RUNS,
# BENCH_SIZES select what runs and how often). Starts a private dockerd when none answers, as `make test` does.
.PHONY: bench
bench: build $(TOOLS)/mackerel-plugin-gostats $(TOOLS)/otelcol
	GOSTATS=$(abspath $(TOOLS)/mackerel-plugin-gostats) OTELCOL=$(abspath $(TOOLS)/otelcol) \
		scripts/with-dockerd.sh bench/run.sh

## --- tools ---
# Every tool is built the same way, in a throwaway module that requires its pinned version: the module
# proxy serves exact versions only, and `go install <pkg>@<version>` or `go get` would also ask it for
# version lists, which it refuses. go still checks every module against the checksum database.
tool_module  = $(firstword $(TOOL_$(1)))
tool_package = $(firstword $(subst @, ,$(call tool_module,$(1))))$(addprefix /,$(word 2,$(TOOL_$(1))))

$(TOOLS)/%:
	$(if $(TOOL_$*),,$(error $@: no TOOL_$* pinned at the top of the Makefile))
	mkdir -p $(TOOLS)
	set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; cd "$$d"; \
		export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0; \
		go mod init throwaway >/dev/null 2>&1; \
		go mod edit -require=$(call tool_module,$*); \
		go build -trimpath -ldflags "-s -w" -o $(abspath $@).tmp $(call tool_package,$*)
	mv $@.tmp $@

# The OpenTelemetry Collector (tools/otelcol, a module of its own): rebuilt when its files change. From
# empty caches it took 11.5 minutes on a 2-core machine (189 modules downloaded, 480 MB of module cache,
# 690 MB of build cache, 760 MB peak RSS); a 41 MB binary.
$(TOOLS)/otelcol: tools/otelcol/go.mod tools/otelcol/go.sum tools/otelcol/main.go
	mkdir -p $(TOOLS)
	cd tools/otelcol && GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0 \
		go build -trimpath -ldflags "-s -w" -o $(abspath $@).tmp .
	mv $@.tmp $@
