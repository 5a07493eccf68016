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

# A site config replaces the embedded default in a copy of the module (build/embed-src), so the
# tree is untouched. (go build -overlay reaches //go:embed files only from Go 1.24 on; go.mod
# allows 1.23, where it would silently embed the default.) -trimpath: same binary either way.
EMBED_SRC    := build/embed-src
SRC_DIR      := $(if $(EMBED_CONFIG),$(EMBED_SRC),.)

# GOOS/GOARCH[/extra env] for `make cross`; names match the OpenWrt architectures in mk/ipk.mk.
CROSS := mipsle:GOARCH=mipsle,GOMIPS=softfloat \
         mips:GOARCH=mips,GOMIPS=softfloat \
         armv7:GOARCH=arm,GOARM=7 \
         arm64:GOARCH=arm64 \
         amd64:GOARCH=amd64

# Other makefiles add their test targets here (mk/*.mk).
TEST_TARGETS :=

.PHONY: all build run test test-go lint cross clean embed-src deps
all: build

embed-src:
ifneq ($(EMBED_CONFIG),)
	@mkdir -p build
	@$(GO) run $(PKG) check --config '$(EMBED_CONFIG)' >/dev/null
	@rm -rf $(EMBED_SRC) && mkdir -p $(EMBED_SRC)
	@tar -cf - go.mod go.sum src | tar -xf - -C $(EMBED_SRC)
	@cp '$(EMBED_CONFIG)' $(EMBED_SRC)/src/internal/config/default.uci
	@echo "embedding $(EMBED_CONFIG)"
endif

build: embed-src
	cd $(SRC_DIR) && CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(abspath $(BIN)) $(PKG)

# Runs on unprivileged ports with the embedded config: DNS 127.0.0.1:5353, TLS :8443,
# HTTP gateway :8080, status 127.0.0.1:9099. CONFIG=path runs a UCI file instead.
run: build
	$(BIN) run $(if $(CONFIG),--config '$(CONFIG)')

cross: embed-src
	@mkdir -p dist
	@set -e; for t in $(CROSS); do \
		name=$${t%%:*}; envs=$$(echo $${t#*:} | tr ',' ' '); \
		(cd $(SRC_DIR) && env CGO_ENABLED=0 GOOS=linux $$envs $(GO) build $(GOFLAGS_REL) -o $(CURDIR)/dist/airelay-linux-$$name $(PKG)); \
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
