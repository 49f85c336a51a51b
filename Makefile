# mackerel-plugin-ecs-gostats
BIN     := mackerel-plugin-ecs-gostats
VERSION ?= $(shell git describe --tags --always 2>/dev/null || cat VERSION 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: build
build:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) .

## --- test / demo / tools (integration) ---

## --- dist / release ---

## --- bench ---
