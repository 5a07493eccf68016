# Stand-in for OpenWrt's include/package.mk, package-defaults.mk and package-pack.mk (see
# README.md). OUT is where stub-meta and stub-build write.

PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)

define Package/Default
  SECTION:=opt
  CATEGORY:=Extra packages
  DEPENDS:=
  MAINTAINER:=$(PKG_MAINTAINER)
  LICENSE:=$(PKG_LICENSE)
  VERSION:=$(PKG_VERSION)$(if $(PKG_RELEASE),-r$(PKG_RELEASE))
  PKGARCH:=x86_64
  USERID:=
  URL:=
  TITLE:=
endef

# download.mk/unpack.mk: the download is refused unless its sha256 is PKG_HASH, then unpacked
# next to PKG_BUILD_DIR (the tarball's top directory is PKG_NAME-PKG_VERSION)
define Build/Prepare/Default
	$(if $(PKG_SOURCE),echo "$(PKG_HASH)  $(DL_DIR)/$(PKG_SOURCE)" | sha256sum -c -)
	$(if $(PKG_SOURCE),gzip -dc $(DL_DIR)/$(PKG_SOURCE) | tar -C $(PKG_BUILD_DIR)/.. -xf -)
endef

define Build/Prepare
	$(call Build/Prepare/Default)
endef

define Build/Configure
endef

define Build/Compile
endef

# 1: package, 2: script variable, 3: file in $(OUT)/<package>/CONTROL (echo adds a newline).
# Scripts are expanded once (package-pack.mk exports them to the shell); Build/* and install
# twice, as in package.mk, whose rules are made by $(eval): so $$$$ there is the shell's $.
define StubScript
	$$(if $$(Package/$(1)/$(2)),$$(file >$(OUT)/$(1)/CONTROL/$(3),$$(Package/$(1)/$(2))))
endef

define StubPackage
stub-meta: stub-meta-$(1)
# make expands a recipe before running it: the directory $$(file) writes into comes first
stub-dir-$(1):
	rm -rf $(OUT)/$(1)/CONTROL && mkdir -p $(OUT)/$(1)/CONTROL
stub-meta-$(1): stub-dir-$(1)
	printf '%s\n' 'Package: $(1)' 'Version: $(VERSION)' 'Maintainer: $(MAINTAINER)' \
		'URL: $(URL)' 'License: $(LICENSE)' 'Section: $(SECTION)' 'Architecture: $(PKGARCH)' \
		'Require-User: $(USERID)' 'Depends: $(strip $(DEPENDS))' 'Title: $(TITLE)' >$(OUT)/$(1)/CONTROL/control
	$$(file >$(OUT)/$(1)/CONTROL/description,$$(strip $$(Package/$(1)/description)))
	( \
		echo "#!/bin/sh"; \
		echo "[ \"\$$$${IPKG_NO_SCRIPT}\" = \"1\" ] && exit 0"; \
		echo "[ -s "\$$$${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0"; \
		echo ". \$$$${IPKG_INSTROOT}/lib/functions.sh"; \
		echo "default_postinst \$$$$0 \$$$$@"; \
	) > $(OUT)/$(1)/CONTROL/postinst
	( \
		echo "#!/bin/sh"; \
		echo "[ -s "\$$$${IPKG_INSTROOT}/lib/functions.sh" ] || exit 0"; \
		echo ". \$$$${IPKG_INSTROOT}/lib/functions.sh"; \
		echo "default_prerm \$$$$0 \$$$$@"; \
	) > $(OUT)/$(1)/CONTROL/prerm
$(call StubScript,$(1),conffiles,conffiles)
$(call StubScript,$(1),postinst,postinst-pkg)
$(call StubScript,$(1),prerm,prerm-pkg)
$(call StubScript,$(1),postrm,postrm)

stub-build: stub-build-$(1)
stub-build-$(1): stub-meta-$(1)
	rm -rf $(PKG_BUILD_DIR) && mkdir -p $(PKG_BUILD_DIR)
	$(Build/Prepare)
	$(Build/Configure)
	$(Build/Compile)
	rm -rf $(OUT)/$(1)/root && mkdir -p $(OUT)/$(1)/root
	$(call Package/$(1)/install,$(OUT)/$(1)/root)
endef

define BuildPackage
  $(eval $(Package/Default))
  $(eval $(Package/$(1)))
  $(eval $(call StubPackage,$(1)))
endef

.PHONY: stub-meta stub-build
