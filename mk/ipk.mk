# OpenWrt packages: `make ipk` builds dist/airelay_<version>_<arch>.ipk for each architecture
# below from the `make cross` binaries, and dist/luci-app-airelay_<version>_all.ipk when
# luci-app/ exists. src/cmd/mkipk writes them (the layout of OpenWrt's ipkg-build); the feed
# Makefile in package/airelay builds the same package inside an OpenWrt SDK.
# `make ipk EMBED_CONFIG=site.uci` embeds a site config, as `make cross` does.

# OpenWrt package architecture : `make cross` binary suffix (its GOARCH/GOMIPS/GOARM are in
# the root Makefile's CROSS list: mipsle/mips softfloat, armv7 GOARM=7, arm64, amd64).
IPK_ARCHES := mipsel_24kc:mipsle \
              mips_24kc:mips \
              arm_cortex-a7_neon-vfpv4:armv7 \
              aarch64_cortex-a53:arm64 \
              x86_64:amd64

# The version is package/airelay/Makefile's PKG_VERSION-rPKG_RELEASE, what an OpenWrt SDK build
# of that Makefile calls the same source (include/package-defaults.mk), so both routes give one
# build one version; luci-app/Makefile carries the same two values (test/pkg checks both).
# A release sets PKG_VERSION (PKG_RELEASE back to 1); a packaging-only change raises PKG_RELEASE
# (README: Releasing). VERSION=… on the command line wins (a snapshot opkg/apk can order).
FEED_MAKEFILE := package/airelay/Makefile
FEED_VERSION  := $(shell sed -n 's/^PKG_VERSION:=//p' $(FEED_MAKEFILE))
FEED_RELEASE  := $(shell sed -n 's/^PKG_RELEASE:=//p' $(FEED_MAKEFILE))
IPK_VERSION   := $(if $(filter command line,$(origin VERSION)),$(VERSION),$(FEED_VERSION)-r$(FEED_RELEASE))
# Every entry's mtime: the last commit's time, so a rebuild of a commit is byte-identical.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH

MKIPK   := build/mkipk
IPK_SRC := https://github.com/airelay/airelay
# PKG_MAINTAINER of package/airelay/Makefile, LUCI_MAINTAINER of luci-app/Makefile
IPK_MAINTAINER := airelay maintainers <maintainers@airelay.invalid>
IPK_COMMON = --out dist --version '$(IPK_VERSION)' --license Apache-2.0 --url $(IPK_SRC) \
	--maintainer '$(IPK_MAINTAINER)'

.PHONY: ipk ipk-airelay ipk-luci test-pkg
ipk: ipk-airelay ipk-luci

$(MKIPK): $(wildcard src/cmd/mkipk/*.go src/internal/ipk/*.go src/internal/apk/*.go)
	@mkdir -p build
	CGO_ENABLED=0 $(GO) build -o $@ ./src/cmd/mkipk

# The airelay package as both formats pack it (make ipk here, make apk in mk/apk.mk): files,
# modes, symlinks, conffiles, control fields and its own scripts (files/pkg/: what the feed
# Makefile defines as Package/airelay/postinst, /prerm, /postrm; mkipk wraps them as OpenWrt
# does), in one place. $$arch and $$bin are the recipe loop's architecture and binary.
# package/airelay/Makefile installs the same (test/pkg checks).
AIRELAY_PKG = --name airelay --arch $$arch --depends libc \
	--section net --source package/airelay --source-name airelay \
	--require-user airelay:airelay \
	--description 'AI API relay: answers DNS for AI API names with the router, relays their TLS by SNI, and serves an HTTP gateway that keeps API keys on the router.' \
	--file $$bin=/usr/sbin/airelay:0755 \
	--file files/airelay.init=/etc/init.d/airelay:0755 \
	--file files/airelay.config=/etc/config/airelay:0600 \
	--file files/airelay.defaults=/etc/uci-defaults/90-airelay:0755 \
	--file files/airelay.keep=/lib/upgrade/keep.d/airelay:0644 \
	--file files/airelay.fw4include=/usr/share/airelay/fw4.include:0644 \
	--link /usr/share/nftables.d/chain-pre/dstnat/30-airelay.nft=/var/run/airelay/fw4-dstnat.nft \
	--link /usr/share/nftables.d/chain-pre/input/30-airelay.nft=/var/run/airelay/fw4-input.nft \
	--conffile /etc/config/airelay \
	--postinst-pkg files/pkg/airelay.postinst-pkg --prerm-pkg files/pkg/airelay.prerm-pkg \
	--postrm files/pkg/airelay.postrm

# luci-app-airelay as both formats pack it (only when luci-app/ exists); luci-app/Makefile (with
# OpenWrt's luci.mk) builds the same. Only a postinst part: no prerm, so removing the pages
# touches nothing of airelay's.
LUCI_PKG = --name luci-app-airelay --arch all --depends 'airelay, luci-base' \
	--section luci --source luci-app --source-name luci-app-airelay \
	--description 'LuCI support for airelay: settings, providers, clients and live status.' \
	$$([ -d luci-app/htdocs ] && echo --tree luci-app/htdocs=/www) \
	$$([ -d luci-app/root ] && echo --tree luci-app/root=/) \
	--postinst-pkg files/pkg/luci-app-airelay.postinst-pkg

ipk-airelay: $(MKIPK)
	@$(MAKE) --no-print-directory cross VERSION='$(IPK_VERSION)'
	@rm -f dist/airelay_*.ipk
	@set -e; for t in $(IPK_ARCHES); do \
		arch=$${t%%:*}; bin=dist/airelay-linux-$${t#*:}; \
		$(MKIPK) $(IPK_COMMON) $(AIRELAY_PKG); \
	done

ipk-luci: $(MKIPK)
	@rm -f dist/luci-app-airelay_*.ipk
	@if [ -d luci-app ]; then \
		$(MKIPK) $(IPK_COMMON) $(LUCI_PKG); \
	else echo "luci-app/ does not exist: no luci-app-airelay package"; fi

# Non-Go checks of the packaging; the Go tests in test/pkg do the rest (go test ./...).
test-pkg:
	@if command -v shellcheck >/dev/null; then \
		shellcheck files/airelay.init files/airelay.defaults files/airelay.fw4include files/pkg/* .ci/deps .ci/run && echo "shellcheck: files/ ok"; \
	else echo "shellcheck is not installed: skipping the init script lint"; fi

TEST_TARGETS += test-pkg
