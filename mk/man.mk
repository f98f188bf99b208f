# SPDX-License-Identifier: ISC
#
# man.mk - the manual pages, built from their scdoc sources in docs/man/.
# The top-level Makefile includes this file after it sets $(B), the build
# directory: MAN_PAGES is expanded at once.
#
#   docs/man/uffd-brokerd.8.scd  ->  $(B)/man/uffd-brokerd.8

SCDOC	?= scdoc

MAN_SRCS := $(wildcard docs/man/*.scd)
MAN_PAGES := $(patsubst docs/man/%.scd,$(B)/man/%,$(MAN_SRCS))

# Written to a temporary file and renamed, so that a failed scdoc leaves no
# page behind that looks up to date.
$(B)/man/%: docs/man/%.scd
	@mkdir -p $(dir $@)
	$(SCDOC) < $< > $@.tmp || { rm -f $@.tmp; exit 1; }
	mv $@.tmp $@
