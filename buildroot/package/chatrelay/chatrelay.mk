################################################################################
#
# chatrelay
#
################################################################################

# Release builds download the tagged source tarball (its hash, with the
# vendored crates, is in chatrelay.hash). Developer builds use the checkout
# that holds this BR2_EXTERNAL tree, via local.mk:
#   CHATRELAY_OVERRIDE_SRCDIR = /path/to/chatrelay
CHATRELAY_VERSION = 0.1.0
CHATRELAY_SITE = $(call github,chatrelay,chatrelay,v$(CHATRELAY_VERSION))
CHATRELAY_LICENSE = MIT or Apache-2.0
CHATRELAY_CARGO_BUILD_OPTS = --bin chatrelay

# An override has no download step, so nothing vendored the crates yet: do it
# after the rsync, before the (offline) build. Never copy a host build's target/ directory.
CHATRELAY_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = --exclude=target --exclude=.venv

define CHATRELAY_VENDOR_CRATES
	cd $(@D) && mkdir -p .cargo && \
		$(HOST_MAKE_ENV) CARGO_HOME=$(BR_CARGO_HOME) \
		$(HOST_DIR)/bin/cargo vendor --locked VENDOR > .cargo/config.toml
endef
ifneq ($(CHATRELAY_OVERRIDE_SRCDIR),)
CHATRELAY_POST_RSYNC_HOOKS += CHATRELAY_VENDOR_CRATES
endif

$(eval $(cargo-package))
