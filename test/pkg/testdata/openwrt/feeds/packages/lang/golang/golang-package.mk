# Stand-in for openwrt/packages' lang/golang/golang-package.mk and golang-build.sh (see
# README.md). STUB_GOMODCACHE: the module cache to use (the real one is $(DL_DIR)/go-mod-cache).

unexport GO111MODULE GOBIN GOCACHE GOENV GOFLAGS GOOS GOARCH GOPATH GOROOT GOTOOLCHAIN GOWORK

GO_PKG_BUILD_PKG?=$(strip $(GO_PKG))/...
GO_PKG_BUILD_DIR=$(PKG_BUILD_DIR)/.go_work/build
GO_PKG_BUILD_BIN_DIR=$(GO_PKG_BUILD_DIR)/bin
GO_ARCH_DEPENDS:=@(aarch64||arm||i386||i686||mips||mips64||mips64el||mipsel||powerpc64||riscv64||x86_64)

# golang-build.sh configure: from $(PKG_BUILD_DIR), everything but dot-directories that is code,
# testdata, go.mod/go.sum/go.work or matches a GO_PKG_INSTALL_EXTRA pattern, into the GOPATH
define GoPackage/Build/Configure
	cd $(PKG_BUILD_DIR) && find ./ -path "*/.*" -prune -o -not -type d -print | \
		grep -e '\.\(c\|cc\|cpp\|go\|h\|hh\|hpp\|proto\|s\)$$$$' -e '/testdata/' -e '/go\.\(mod\|sum\|work\)$$$$' \
			$(foreach p,$(GO_PKG_INSTALL_EXTRA),-e '$(p)') | \
		while read -r f; do \
			mkdir -p "$(GO_PKG_BUILD_DIR)/src/$(GO_PKG)/$$$${f%/*}"; \
			cp -fpR "$$$$f" "$(GO_PKG_BUILD_DIR)/src/$(GO_PKG)/$$$$f"; \
		done
endef

# golang-build.sh build: go install from the GOPATH's top (module mode finds go.mod above it,
# in $(PKG_BUILD_DIR)), GOTOOLCHAIN=local as golang-package.mk sets it
define GoPackage/Build/Compile
	cd $(GO_PKG_BUILD_DIR) && env GOPATH=$(GO_PKG_BUILD_DIR) GOTOOLCHAIN=local GOENV=off CGO_ENABLED=0 \
		$(if $(STUB_GOMODCACHE),GOMODCACHE=$(STUB_GOMODCACHE)) \
		go install -modcacherw -v -buildvcs=false -trimpath \
		$(if $(strip $(GO_PKG_TAGS)),-tags "$(GO_PKG_TAGS)") \
		-ldflags "$(GO_PKG_LDFLAGS) $(patsubst %,-X %,$(GO_PKG_LDFLAGS_X))" \
		$(GO_PKG_BUILD_PKG)
endef

define GoPackage/Package/Install/Bin
	install -d -m0755 $(1)/usr/bin
	install -m0755 $(GO_PKG_BUILD_BIN_DIR)/* $(1)/usr/bin/
endef

ifneq ($(strip $(GO_PKG)),)
  Build/Configure=$(call GoPackage/Build/Configure)
  Build/Compile=$(call GoPackage/Build/Compile)
endif

define GoBinPackage
  ifndef Package/$(1)/install
    Package/$(1)/install=$$(call GoPackage/Package/Install/Bin,$$(1))
  endif
endef
