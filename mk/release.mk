# `make release`: what a tag becomes (README: Releasing). At a clean checkout of the tag
# v<PKG_VERSION of package/airelay/Makefile>, with the signing keys (RELEASE_KEYS, default keys/:
# airelay-apk.key and airelay-usign.key, as `make keys` writes them), it writes $(RELEASE_DIR)/:
#   feed/<arch>/                 the signed feed of every architecture (make feed), served as is
#   feed/keys/                   the public keys routers install (apk: .pem, opkg: usign)
#   airelay-<version>.tar.gz     the source, to attach to the release as it is
#   openwrt/net/airelay/Makefile and openwrt/applications/luci-app-airelay/: the packages for
#                                openwrt/packages and openwrt/luci (the Makefile downloads that
#                                tarball and checks its PKG_HASH)
#   SHA256SUMS                   every file above
# `make openwrt-src` writes only the tarball and the openwrt/ directory, for the working tree
# (test/pkg builds them in its stand-in SDK).

RELEASE_DIR  ?= dist/release
RELEASE_KEYS ?= $(KEYS_DIR)
RELEASE_TAG   = v$(FEED_VERSION)
RELEASE_SRC   = airelay-$(FEED_VERSION)
# what package/airelay/Makefile's Build/Prepare copies from a feed checkout, and a README
RELEASE_FILES = go.mod go.sum LICENSE README.md src files
RELEASE_URL   = $(IPK_SRC)/releases/download/v$$(PKG_VERSION)/

.PHONY: release openwrt-src

openwrt-src:
	@rm -rf $(RELEASE_DIR)/openwrt $(RELEASE_DIR)/$(RELEASE_SRC).tar.gz
	@mkdir -p $(RELEASE_DIR)/openwrt/net/airelay $(RELEASE_DIR)/openwrt/applications
	@# the tracked files as they are in the tree, in a fixed order, owner, mode and time: the same
	@# tarball (and PKG_HASH) from every clean checkout of a commit, given the same tar and gzip
	git ls-files -z $(RELEASE_FILES) | LC_ALL=C tar --null -T - --sort=name \
		--mtime=@$(SOURCE_DATE_EPOCH) --owner=0 --group=0 --numeric-owner --mode=a+rX,u+w,go-w \
		--transform 's,^,$(RELEASE_SRC)/,' -cf - | gzip -9n >$(RELEASE_DIR)/$(RELEASE_SRC).tar.gz
	@hash=$$(sha256sum $(RELEASE_DIR)/$(RELEASE_SRC).tar.gz | cut -d' ' -f1); \
	awk -v hash="$$hash" -v url='$(RELEASE_URL)' ' \
		/^# airelay-source:/ { skip = 1; \
			print "# The release tarball (make release), checked against PKG_HASH."; \
			print "PKG_SOURCE:=$$(PKG_NAME)-$$(PKG_VERSION).tar.gz"; \
			print "PKG_SOURCE_URL:=" url; \
			print "PKG_HASH:=" hash; next } \
		/^# airelay-prepare:/ { skip = 1; next } \
		/^# airelay-(source|prepare)-end/ { skip = 0; next } \
		!skip' $(FEED_MAKEFILE) >$(RELEASE_DIR)/openwrt/net/airelay/Makefile
	@git ls-files -z luci-app | grep -zv '^luci-app/tests/' | \
		LC_ALL=C tar --null -T - --transform 's,^luci-app,luci-app-airelay,' -cf - | \
		tar -C $(RELEASE_DIR)/openwrt/applications -xf -
	@echo "$(RELEASE_DIR)/$(RELEASE_SRC).tar.gz, $(RELEASE_DIR)/openwrt/: net/airelay, applications/luci-app-airelay"

release:
	@[ "$$(git describe --tags --exact-match --match 'v[0-9]*' HEAD 2>/dev/null)" = "$(RELEASE_TAG)" ] || { \
		echo "make release: HEAD is not tagged $(RELEASE_TAG) (PKG_VERSION of $(FEED_MAKEFILE))"; exit 1; }
	@[ -z "$$(git status --porcelain)" ] || { echo "make release: the checkout has changes"; exit 1; }
	@[ -f $(RELEASE_KEYS)/airelay-apk.key ] && [ -f $(RELEASE_KEYS)/airelay-usign.key ] || { \
		echo "make release: no $(RELEASE_KEYS)/airelay-apk.key and airelay-usign.key (make keys, once)"; exit 1; }
	rm -rf $(RELEASE_DIR)
	$(MAKE) --no-print-directory feed FEED_DIR=$(RELEASE_DIR)/feed \
		SIGNING_KEY=$(RELEASE_KEYS)/airelay-apk.key USIGN_KEY=$(RELEASE_KEYS)/airelay-usign.key
	$(MAKE) --no-print-directory openwrt-src
	cd $(RELEASE_DIR) && find . -type f ! -name SHA256SUMS | LC_ALL=C sort | \
		sed 's,^\./,,' | xargs sha256sum >SHA256SUMS
	@echo "release $(RELEASE_TAG) in $(RELEASE_DIR)/ (SHA256SUMS lists every file)"
