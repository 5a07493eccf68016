# airelay — see README.md. `make run` runs it with the embedded config; `make test` runs the tests.

GO           ?= go
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
EMBED_CONFIG ?=
# Go build tags. nethttpomithttp2 leaves net/http's HTTP/2 out (~590 KB of binary, ~190 KB of a
# mipsel package): nothing speaks HTTP/2 any more (the gateway has its own HTTP/1.1 client,
# the status listener and `airelay status` need no HTTP/2), so it is on by default.
TAGS         ?= nethttpomithttp2
BIN          := bin/airelay
PKG          := ./src/cmd/airelay
LDFLAGS      := -s -w -buildid= -X main.version=$(VERSION)
GOFLAGS_REL  := -trimpath -ldflags '$(LDFLAGS)' $(if $(TAGS),-tags '$(TAGS)')

# A site config replaces the embedded default through go build -overlay, so the tree is untouched.
OVERLAY_JSON := build/embed-overlay.json
OVERLAY      := $(if $(EMBED_CONFIG),-overlay=$(CURDIR)/$(OVERLAY_JSON))

# GOOS/GOARCH[/extra env] for `make cross`; names match the OpenWrt architectures in mk/ipk.mk.
CROSS := mipsle:GOARCH=mipsle,GOMIPS=softfloat \
         mips:GOARCH=mips,GOMIPS=softfloat \
         armv7:GOARCH=arm,GOARM=7 \
         arm64:GOARCH=arm64 \
         amd64:GOARCH=amd64

# Other makefiles add their test targets here (mk/*.mk).
TEST_TARGETS :=

.PHONY: all build run test test-go lint cross clean embed-overlay deps
all: build

embed-overlay:
ifneq ($(EMBED_CONFIG),)
	@mkdir -p build
	@$(GO) run $(PKG) check --config '$(EMBED_CONFIG)' >/dev/null
	@printf '{"Replace":{"%s":"%s"}}\n' "$(CURDIR)/src/internal/config/default.uci" "$(abspath $(EMBED_CONFIG))" > $(OVERLAY_JSON)
	@echo "embedding $(EMBED_CONFIG)"
endif

build: embed-overlay
	CGO_ENABLED=0 $(GO) build $(OVERLAY) $(GOFLAGS_REL) -o $(BIN) $(PKG)

# Runs on unprivileged ports with the embedded config: DNS 127.0.0.1:5353, TLS :8443,
# HTTP gateway :8080, status 127.0.0.1:9099. CONFIG=path runs a UCI file instead.
run: build
	$(BIN) run $(if $(CONFIG),--config '$(CONFIG)')

cross: embed-overlay
	@mkdir -p dist
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; envs=$$(echo $${t#*:} | tr ',' ' '); \
		env CGO_ENABLED=0 GOOS=linux $$envs $(GO) build $(OVERLAY) $(GOFLAGS_REL) -o dist/airelay-linux-$$name $(PKG); \
	done
	@ls -l dist/airelay-linux-* | awk '{printf "%-32s %9d bytes  %6.2f MiB\n", $$9, $$5, $$5/1048576}'

lint:
	@out=$$(gofmt -l src bench test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@if command -v staticcheck >/dev/null; then staticcheck ./...; else echo "staticcheck not installed (.ci/run installs it)"; fi

test-go:
	$(GO) test -race -count=1 -timeout 600s ./...

-include mk/*.mk

# Installs what the tests drive for real (dig, curl, dnsmasq, qemu-user-static, Node SDKs…).
deps:
	@./.ci/deps

test: deps
	@$(MAKE) --no-print-directory lint test-go $(TEST_TARGETS)

clean:
	rm -rf bin dist build
