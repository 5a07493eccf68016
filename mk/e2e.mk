# Home-LAN end to end (issue 7): a device, a router and the internet in network namespaces,
# with airelay started the way its init script starts it, real dnsmasq, nftables, curl, dig and
# the official SDKs. test/e2e/README.md says what it proves. Needs root and `ip netns`; skipped,
# saying why, without them. `go test ./...` skips it (AIRELAY_E2E unset), so `make test` runs it
# once, here.
.PHONY: e2e
e2e:
	@if [ "$$(id -u)" != 0 ]; then \
		echo "e2e: skipped: needs root (network namespaces, nftables)"; \
	elif ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then \
		echo "e2e: skipped: ip netns is unavailable (install iproute2)"; \
	else \
		AIRELAY_E2E=1 $(GO) test -count=1 -v -timeout 900s -run '^TestE2E$$' ./test/e2e; \
	fi

TEST_TARGETS += e2e
