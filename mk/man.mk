# SPDX-License-Identifier: ISC
# The manual pages: scdoc sources in docs/man/, rendered into $(B)/man/.
SCDOC ?= scdoc
MAN_SRCS := $(wildcard docs/man/*.scd)
MAN_PAGES := $(patsubst docs/man/%.scd,$(B)/man/%,$(MAN_SRCS))

$(B)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp && mv $@.tmp $@
