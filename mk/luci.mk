# luci-app-airelay: shellcheck on the rpcd plugin, then the Node tests in luci-app/tests (node's
# own test runner, no npm packages). They build airelay from src/ for the schema and for
# `airelay check`, or use $(AIRELAY_BIN) when it is set; see luci-app/README.md.
LUCI_PLUGIN := luci-app/root/usr/libexec/rpcd/luci.airelay

.PHONY: test-luci
test-luci:
	@if command -v shellcheck >/dev/null; then \
		shellcheck -s sh $(LUCI_PLUGIN) && echo "shellcheck: $(LUCI_PLUGIN) ok"; \
	else echo "shellcheck is not installed: skipping the rpcd plugin lint"; fi
	@if command -v node >/dev/null; then \
		node --test luci-app/tests/; \
	else echo "node is not installed: skipping the luci-app tests"; fi

TEST_TARGETS += test-luci
