################################################################################
#
# chatrelay
#
################################################################################

# Release builds download chatrelay-$(CHATRELAY_VERSION)-cargo5.tar.gz, the
# source with its crates already vendored as Buildroot vendors them, made by
# scripts/release-tarball.sh (which also writes its hash into chatrelay.hash),
# from BR2_PACKAGE_CHATRELAY_RELEASE_SITE. Developer builds use a checkout
# instead, via local.mk:
#   CHATRELAY_OVERRIDE_SRCDIR = /path/to/chatrelay
CHATRELAY_VERSION = 0.1.0
CHATRELAY_SITE = $(call qstrip,$(BR2_PACKAGE_CHATRELAY_RELEASE_SITE))
CHATRELAY_LICENSE = MIT or Apache-2.0
CHATRELAY_CARGO_BUILD_OPTS = --bin chatrelay

# Never copy a host build's target/ directory or the test venv.
CHATRELAY_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude=target --exclude=.venv

# An override has no download step, so nothing vendored the crates yet: do
# it after the rsync, as the download post-process would (same command, same
# lock on the cargo home), before the offline build. The post-process runs
# cargo from host-rustc, which the cargo infrastructure therefore makes a
# download dependency (CHATRELAY_DOWNLOAD_DEPENDENCIES); the rsync step gets
# the same dependencies below, and like the download step it first fills
# this package's per-package host dir with them.
ifneq ($(CHATRELAY_OVERRIDE_SRCDIR),)
define CHATRELAY_VENDOR_CRATES
	$(call prepare-per-package-directory,$(CHATRELAY_FINAL_DOWNLOAD_DEPENDENCIES))
	mkdir -p $(@D)/.cargo $(BR_CARGO_HOME)
	cd $(@D) && $(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		flock $(BR_CARGO_HOME)/.br-lock \
		cargo vendor --manifest-path Cargo.toml --locked VENDOR \
		> .cargo/config.toml
endef
CHATRELAY_POST_RSYNC_HOOKS += CHATRELAY_VENDOR_CRATES
endif

$(eval $(cargo-package))

ifneq ($(CHATRELAY_OVERRIDE_SRCDIR),)
$(CHATRELAY_TARGET_RSYNC): | $(CHATRELAY_FINAL_DOWNLOAD_DEPENDENCIES)
endif
