# OpenWrt 25.12 packages (apk-tools v3) and a feed for both package managers.
#
# `make apk` builds dist/apk/<arch>/airelay-<version>.apk for each architecture of make ipk
# (IPK_ARCHES) and dist/apk/noarch/luci-app-airelay-<version>.apk: the file names OpenWrt's own
# build gives (name-version.apk; the architecture is the directory). Same tree, modes and
# conffiles as the ipks (AIRELAY_PKG, LUCI_PKG in mk/ipk.mk); src/cmd/mkipk --format apk writes
# them (package src/internal/apk).
# `make feed` builds both formats and writes dist/feed/<arch>/ with the .apk files and
# packages.adb, the .ipk files and Packages, Packages.gz: a directory a web server serves as is.
# (build/mkipk is $(MKIPK) of mk/ipk.mk, which is read after this file.)
# SIGNING_KEY=path (PEM, ECDSA P-256 or RSA) signs the .apk files and packages.adb;
# USIGN_KEY=path (usign secret key) signs Packages for opkg. `make keys` makes both in keys/.

APK_DIR  := dist/apk
FEED_DIR := dist/feed
KEYS_DIR ?= keys
SIGNING_KEY ?=
USIGN_KEY   ?=
MKFEED   := build/mkfeed
APK_SIGN  = $(if $(SIGNING_KEY),--sign-key '$(SIGNING_KEY)')
APK_FEED_ARCHES = $(subst $(space),$(comma),$(strip $(foreach t,$(IPK_ARCHES),$(firstword $(subst :, ,$(t))))))
empty :=
space := $(empty) $(empty)
comma := ,

.PHONY: apk apk-airelay apk-luci feed keys
apk: apk-airelay apk-luci

apk-airelay: build/mkipk
	@$(MAKE) --no-print-directory cross VERSION='$(IPK_VERSION)'
	@rm -f $(APK_DIR)/*/airelay-[0-9]*.apk
	@set -e; for t in $(IPK_ARCHES); do \
		arch=$${t%%:*}; bin=dist/airelay-linux-$${t#*:}; \
		$(MKIPK) --format apk $(IPK_COMMON) --out $(APK_DIR)/$$arch $(APK_SIGN) $(AIRELAY_PKG); \
	done

apk-luci: build/mkipk
	@rm -f $(APK_DIR)/noarch/luci-app-airelay-[0-9]*.apk
	@if [ -d luci-app ]; then \
		$(MKIPK) --format apk $(IPK_COMMON) --out $(APK_DIR)/noarch $(APK_SIGN) $(LUCI_PKG); \
	else echo "luci-app/ does not exist: no luci-app-airelay package"; fi

$(MKFEED): $(wildcard src/cmd/mkfeed/*.go src/internal/apk/*.go src/internal/ipk/*.go src/internal/usign/*.go)
	@mkdir -p build
	CGO_ENABLED=0 $(GO) build -o $@ ./src/cmd/mkfeed

feed: ipk apk $(MKFEED)
	$(MKFEED) --out $(FEED_DIR) --apk $(APK_DIR) --ipk dist --arch '$(APK_FEED_ARCHES)' \
		$(APK_SIGN) $(if $(USIGN_KEY),--usign-key '$(USIGN_KEY)')
	@echo "feed in $(FEED_DIR)/: one directory per architecture$(if $(SIGNING_KEY),, (unsigned: SIGNING_KEY=path signs it))"

# New signing keys (never overwrites): keys/airelay-apk.key (SIGNING_KEY) and its public
# airelay-apk.pem (for /etc/apk/keys/), keys/airelay-usign.key (USIGN_KEY) and its public
# airelay-usign.pub (for /etc/opkg/keys/<fingerprint>).
keys: $(MKFEED)
	$(MKFEED) keys --dir $(KEYS_DIR)
