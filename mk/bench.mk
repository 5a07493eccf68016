# `make bench`: airelay side by side with nginx, HAProxy, dnsmasq and a direct connection on
# loopback (bench/README.md). Writes BENCHMARKS.md, bench/results.json and bench/chart.svg.
# Not part of `make test`. BENCH_QUICK=1 makes short runs for iterating and writes to
# build/bench/quick/ instead. `make bench-profile` keeps pprof profiles of airelay under the load.
# `make size` prints what each Go package costs in the mipsle binary (the table BENCHMARKS.md has).

BENCH_DIR   := build/bench
BENCH_QUICK ?=
BENCH_OUT   := $(if $(BENCH_QUICK),$(BENCH_DIR)/quick,.)
# The mipsle binary as `make cross` builds it, but with its symbol table (no -s -w): what
# `airbench size` reads to share the binary out by package. Defined before BENCH_ARGS, which
# := expands at once (it was empty there, so -symbols took "-md" as its value).
SIZE_BIN     := $(BENCH_DIR)/airelay-mipsle-symbols
SIZE_LDFLAGS := $(filter-out -s -w,$(LDFLAGS))
BENCH_ARGS  := $(if $(BENCH_QUICK),-quick) -airelay $(BENCH_DIR)/airelay -dist $(BENCH_DIR)/tree/dist -symbols $(SIZE_BIN) \
	-md $(BENCH_OUT)/BENCHMARKS.md -json $(BENCH_OUT)/$(if $(BENCH_QUICK),,bench/)results.json \
	-svg $(BENCH_OUT)/$(if $(BENCH_QUICK),,bench/)chart.svg
# The profiling build: airelay plus a pprof listener, added through -overlay (never in src/).
BENCH_PPROF_OVERLAY := $(BENCH_DIR)/pprof-overlay.json

.PHONY: bench bench-deps bench-build bench-footprint bench-profile bench-probe size size-build size-floor
bench: bench-deps bench-build bench-footprint
	@mkdir -p $(BENCH_OUT)
	$(BENCH_DIR)/airbench $(BENCH_ARGS)
	@echo "bench: $$(( $$(date +%s) - $$(cat $(BENCH_DIR)/started) )) s in all, installs and builds included"

bench-deps:
	@mkdir -p $(BENCH_DIR) && date +%s > $(BENCH_DIR)/started
	@./bench/deps.sh

# The airelay under test is built exactly as `make build` builds bin/airelay.
bench-build:
	@mkdir -p $(BENCH_DIR)
	CGO_ENABLED=0 $(GO) build $(GOFLAGS_REL) -o $(BENCH_DIR)/airelay $(PKG)
	$(GO) build -o $(BENCH_DIR)/airbench ./bench/cmd/airbench

size-build: embed-src
	@mkdir -p $(BENCH_DIR)
	cd $(SRC_DIR) && CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat $(GO) build -trimpath -ldflags '$(SIZE_LDFLAGS)' \
		$(if $(TAGS),-tags '$(TAGS)') -o $(abspath $(SIZE_BIN)) $(PKG)

size: size-build
	$(GO) run ./bench/cmd/airbench size $(SIZE_BIN)

# `make size-floor`: airelay's mipsle binary beside bench/floor (only what airelay must link),
# both built as `make cross` builds the daemon, raw and gzip -9 (the .ipk's compression).
size-floor: embed-src
	@mkdir -p $(BENCH_DIR)
	cd $(SRC_DIR) && CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat $(GO) build $(GOFLAGS_REL) -o $(abspath $(BENCH_DIR))/size-airelay $(PKG)
	CGO_ENABLED=0 GOOS=linux GOARCH=mipsle GOMIPS=softfloat $(GO) build $(GOFLAGS_REL) -o $(BENCH_DIR)/size-floor ./bench/floor
	@for f in airelay floor; do printf '%-8s mipsle %9d bytes, gzip -9 %9d bytes\n' $$f $$(wc -c < $(BENCH_DIR)/size-$$f) $$(gzip -9 -c $(BENCH_DIR)/size-$$f | wc -c); done

# `make cross` and `make ipk` on a copy of the tree, so that the bench never races other work
# for dist/.
bench-footprint: size-build
	@rm -rf $(BENCH_DIR)/tree && mkdir -p $(BENCH_DIR)/tree
	@tar -cf - --exclude=node_modules Makefile go.mod go.sum mk src files package $(wildcard luci-app) | tar -xf - -C $(BENCH_DIR)/tree
	@$(MAKE) --no-print-directory -C $(BENCH_DIR)/tree ipk VERSION='$(IPK_VERSION)' SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) >/dev/null
	@ls -l $(BENCH_DIR)/tree/dist | awk 'NR>1 {printf "bench: %-48s %9d bytes\n", $$9, $$5}'

bench-profile: bench-deps bench-build bench-footprint
	@printf '{"Replace":{"%s":"%s"}}\n' "$(CURDIR)/src/cmd/airelay/zz_bench_pprof.go" "$(CURDIR)/bench/profile/pprof.go.txt" > $(BENCH_PPROF_OVERLAY)
	CGO_ENABLED=0 $(GO) build -overlay=$(CURDIR)/$(BENCH_PPROF_OVERLAY) -trimpath -o $(BENCH_DIR)/airelay-pprof $(PKG)
	@mkdir -p $(BENCH_DIR)/profile
	AIRELAY_PPROF=127.0.0.1:6061 AIRBENCH_PROFILE_DIR=$(BENCH_DIR)/profiles $(BENCH_DIR)/airbench -quick \
		-airelay $(BENCH_DIR)/airelay-pprof -dist $(BENCH_DIR)/tree/dist -only l7,l7tls,memory \
		-md $(BENCH_DIR)/profile/BENCHMARKS.md -json $(BENCH_DIR)/profile/results.json -svg $(BENCH_DIR)/profile/chart.svg
	@echo "bench: profiles in $(BENCH_DIR)/profiles; e.g. go tool pprof -top $(BENCH_DIR)/airelay-pprof $(BENCH_DIR)/profiles/cpu-*.prof"

# `make bench-probe`: what one streamed event and one relay handshake cost, counted (system calls
# by kind, reads that found nothing, context switches) rather than timed, so that it can be read
# on a busy machine: airelay, then nginx and HAProxy when installed (bench/PROFILE.md). airelay is
# built with its symbol table, for `perf report` of `airbench probe -record FILE`.
PROBE_BIN := $(BENCH_DIR)/airelay-syms
bench-probe: bench-deps
	@mkdir -p $(BENCH_DIR)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(SIZE_LDFLAGS)' $(if $(TAGS),-tags '$(TAGS)') -o $(PROBE_BIN) $(PKG)
	$(GO) build -o $(BENCH_DIR)/airbench ./bench/cmd/airbench
	@set -e; for t in airelay nginx; do \
		[ $$t = airelay ] || command -v $$t >/dev/null || [ -x /usr/sbin/$$t ] || continue; \
		$(BENCH_DIR)/airbench probe -airelay $(PROBE_BIN) -target $$t -what events -n 10 -tick 1ms -secs 5; \
		$(BENCH_DIR)/airbench probe -airelay $(PROBE_BIN) -target $$t -what events -n 1000 -tick 100ms -secs 5; \
	done
	@set -e; for t in airelay haproxy nginx; do \
		[ $$t = airelay ] || command -v $$t >/dev/null || [ -x /usr/sbin/$$t ] || continue; \
		$(BENCH_DIR)/airbench probe -airelay $(PROBE_BIN) -target $$t -what handshakes -count 500; \
	done
