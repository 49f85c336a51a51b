# mackerel-plugin-ecs-gostats
BIN     := mackerel-plugin-ecs-gostats
# The tag without its "v" when HEAD is tagged (as goreleaser's {{.Version}}), else the VERSION file.
VERSION ?= $(shell git describe --tags --exact-match 2>/dev/null | sed 's/^v//' | grep . || cat VERSION)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## --- test / demo / tools (integration) ---
# Tools built from the Go module proxy into a gitignored cache, once.
TOOLS                 ?= .cache/bin
MACKEREL_AGENT_VERSION := v0.87.0
GOTESTFLAGS           ?=

.PHONY: test demo
# Unit tests, then integration tests on a real Docker Engine (scripts/with-dockerd.sh starts a
# private dockerd if none answers) and under a real mackerel-agent.
# (test-dist hooks in from the dist section with its own `test: test-dist` line.)
test: $(TOOLS)/mackerel-agent $(TOOLS)/mackerel-plugin-gostats
	go vet ./...
	MACKEREL_AGENT_BIN=$(abspath $(TOOLS)/mackerel-agent) GOSTATS_BIN=$(abspath $(TOOLS)/mackerel-plugin-gostats) \
		scripts/with-dockerd.sh go test -p 1 -count=1 $(GOTESTFLAGS) ./...

# Starts a few sample ECS-like tasks, runs the plugin over them and shows its output, then cleans up.
demo:
	scripts/with-dockerd.sh scripts/demo.sh

# mackerel-agent built in a throwaway module (it is a main package, not a library of ours).
$(TOOLS)/mackerel-agent:
	mkdir -p $(TOOLS)
	set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
		cd "$$tmp"; export GOFLAGS=-mod=mod GOWORK=off; \
		go mod init tools >/dev/null 2>&1; \
		go get github.com/mackerelio/mackerel-agent@$(MACKEREL_AGENT_VERSION) 2>"$$tmp/get.log" || \
			{ cat "$$tmp/get.log" >&2; exit 1; }; \
		CGO_ENABLED=0 go build -o $(abspath $@).tmp github.com/mackerelio/mackerel-agent
	mv $@.tmp $@

## --- dist / release ---
# Release zips in the layout `mkr plugin install` downloads:
#   dist/mackerel-plugin-ecs-gostats_linux_<arch>.zip holding the executable, README.md and LICENSE at the top.
DIST_DIR     := dist
DIST_ARCHS   := amd64 arm64
DIST_VERSION := $(VERSION)
MKR_VERSION  := v0.60.0
# The module proxy serves mkr's info and zip but not its separate .mod file, so the .mod is taken from the
# zip into a local file proxy placed before the real one; go still checks both against the checksum database.
MKR_PROXY    := $(shell go env GOPROXY | cut -d, -f1)
MKR_MODDIR   := .cache/goproxy/github.com/mackerelio/mkr/@v

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

$(TOOLS)/mkr:
	mkdir -p $(TOOLS) $(MKR_MODDIR)
	curl -fsSL -o $(MKR_MODDIR)/$(MKR_VERSION).zip $(MKR_PROXY)/github.com/mackerelio/mkr/@v/$(MKR_VERSION).zip
	unzip -p $(MKR_MODDIR)/$(MKR_VERSION).zip github.com/mackerelio/mkr@$(MKR_VERSION)/go.mod > $(MKR_MODDIR)/$(MKR_VERSION).mod
	rm $(MKR_MODDIR)/$(MKR_VERSION).zip
	echo $(MKR_VERSION) > $(MKR_MODDIR)/list
	GOPROXY=file://$(abspath .cache/goproxy),$(MKR_PROXY) GOBIN=$(abspath $(TOOLS)) \
		go install github.com/mackerelio/mkr@$(MKR_VERSION)

# Installs each zip with the real mkr into a temporary prefix and runs what it installed, and pushes
# examples/dashboard.json with mkr to a loopback stand-in for the API (dist_test.go). Part of `make test`.
test: test-dist
test-dist: dist $(TOOLS)/mkr
	MKR_BIN=$(abspath $(TOOLS)/mkr) DIST_DIR=$(abspath $(DIST_DIR)) DIST_VERSION=$(DIST_VERSION) \
		go test -count=1 -v -run '^TestDist' . > $(DIST_DIR)/test-dist.log 2>&1; rc=$$?; cat $(DIST_DIR)/test-dist.log; \
		test $$rc -eq 0 && ! grep -q -- '--- SKIP' $(DIST_DIR)/test-dist.log

## --- bench ---
# `make bench`: wall time, CPU time and peak RSS of full runs of the built plugin, side by side with the
# shell loop it replaces and a minimal floor, on 30 real tasks and on 100/300/1000 stand-in targets, plus a
# profile (bench/run.sh). Starts a private dockerd when none answers, as `make test` does.
TOOLS           ?= .cache/bin
GOSTATS_VERSION := v0.91.0

.PHONY: bench
bench: build $(TOOLS)/mackerel-plugin-gostats
	GOSTATS=$(abspath $(TOOLS)/mackerel-plugin-gostats) scripts/with-dockerd.sh bench/run.sh

# The shell loop's plugin, built in a throwaway module: the module proxy serves no version list for
# mackerel-agent-plugins, so `go install ...@version` fails where an explicit require works.
$(TOOLS)/mackerel-plugin-gostats:
	mkdir -p $(TOOLS)
	set -e; d=$$(mktemp -d); trap 'rm -rf "$$d"' EXIT; cd "$$d"; \
		go mod init throwaway >/dev/null 2>&1; \
		go mod edit -require=github.com/mackerelio/mackerel-agent-plugins@$(GOSTATS_VERSION); \
		CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" -o $(abspath $@) \
			github.com/mackerelio/mackerel-agent-plugins/mackerel-plugin-gostats
