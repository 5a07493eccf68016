# The oldest Go airelay supports is go.mod's go line: the Go of OpenWrt 24.10's packages feed
# (lang/golang: 1.23.x; 25.12's carries 1.26.x). OpenWrt's golang build sets GOTOOLCHAIN=local,
# so a newer go line would stop that SDK from building airelay at all. `make test-go-min` (part
# of `make test`) vets and tests the Go packages with exactly that Go, which the Go module proxy
# serves as a toolchain, and vets them for a 32-bit MIPS target as the SDK builds them. Only the
# unit tests run twice: the e2e and packaging suites check what the binary and the packages do,
# not which Go built them, and running them again would double `make test`'s time; the race
# detector runs once too, with the current Go (test-go).
GO_MIN := $(shell sed -n 's/^go \([0-9.]*\)$$/\1/p' go.mod)
GO_MIN_PKGS = $(shell $(GO) list ./... | grep -v -e /test/e2e -e /test/pkg)

.PHONY: test-go-min
test-go-min:
	@test -n '$(GO_MIN)' || { echo "go.mod has no go line"; exit 1; }
	@echo "go $(GO_MIN) (go.mod's go line): vet, vet for linux/mipsle, test"
	GOTOOLCHAIN=go$(GO_MIN) $(GO) vet ./...
	GOTOOLCHAIN=go$(GO_MIN) GOOS=linux GOARCH=mipsle GOMIPS=softfloat $(GO) vet ./...
	GOTOOLCHAIN=go$(GO_MIN) $(GO) test -count=1 -timeout 600s $(GO_MIN_PKGS)

TEST_TARGETS += test-go-min
