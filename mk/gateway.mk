# Gateway: the official-SDK scripts in test/node must parse. The Go test runs them against the
# gateway when node and test/node/node_modules are present (.ci/deps runs npm ci).
.PHONY: test-gateway
test-gateway:
	@if command -v node >/dev/null; then \
		for f in test/node/*.mjs; do node --check "$$f" || exit 1; done; \
	else echo "node is not installed: skipping the test/node syntax check"; fi

TEST_TARGETS += test-gateway
