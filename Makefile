# Gatehouse — one non-recursive Makefile.
#   make            build build/gatehouse
#   make run        install deps, build, start the demo (examples/demo.yaml)
#   make test       install deps, build, run every test; SANITIZE=1 for ASan+UBSan
#   make fuzz       build libFuzzer targets and run each for FUZZ_TIME seconds
#   make bench      run the benchmarks in bench/
#   make check      static checks (banned calls)

CC       ?= cc
SANITIZE ?= 0
PKGS     := sqlite3 libsodium libevent libevent_pthreads jansson yaml-0.1 libpcre2-8 tree-sitter libseccomp
# libpq, libcurl, Hyperscan and OpenSSL are loaded at first use (connector/pq_dl.h,
# core/curl_dl.h, scan/hs_dl.h, front/tls_dl.h), not linked: with their dependencies (Kerberos,
# LDAP, libstdc++, libcrypto's symbols) they cost every command, `gatehouse run` included,
# ~17 ms before main. Their headers are still needed.
DL_PKGS  := libpq libcurl libhs openssl libevent_openssl

ifeq ($(SANITIZE),1)
  BUILD   := build/san
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
  OPT     := -O1 -g
else
  BUILD   := build/rel
  SANFLAGS :=
  OPT     := -O2 -g
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wcast-qual -Wvla -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) $(SANFLAGS) -Isrc -MMD -MP \
           $(shell pkg-config --cflags $(PKGS) $(DL_PKGS) 2>/dev/null)
LDLIBS  += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpg_query -lpthread -lm -ldl
LDFLAGS += $(SANFLAGS)

MODULES  := core metrics config store vault identity sql policy audit usage connector approvals front scan sandbox backup readiness cli
LIB_SRC  := $(foreach m,$(MODULES),$(wildcard src/$(m)/*.c))
# tree-sitter grammars for gatehouse scan: generated C from npm (scripts/fetch-grammars), compiled
# as third-party code (no -Werror, no sanitizers).
GRAMMAR_DIR := build/grammars
GRAMMAR_SRC := $(addprefix $(GRAMMAR_DIR)/,tree-sitter-javascript/src/parser.c tree-sitter-javascript/src/scanner.c \
               tree-sitter-typescript/typescript/src/parser.c tree-sitter-typescript/typescript/src/scanner.c \
               tree-sitter-typescript/tsx/src/parser.c tree-sitter-typescript/tsx/src/scanner.c \
               tree-sitter-python/src/parser.c tree-sitter-python/src/scanner.c)
GRAMMAR_OBJ := $(GRAMMAR_SRC:$(GRAMMAR_DIR)/%.c=$(BUILD)/grammars/%.o)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(GRAMMAR_OBJ)
MAIN_OBJ := $(BUILD)/src/main.o
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps run test unit e2e fuzz bench check clean build/gatehouse grammars
all: build/gatehouse

$(BUILD)/gatehouse: $(LIB_OBJ) $(MAIN_OBJ)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# build/gatehouse is always the binary of the last build flavour asked for (phony: relinked
# every time, because make would judge the link by the newer binary it points to).
build/gatehouse: $(BUILD)/gatehouse
	@ln -sf $(notdir $(BUILD))/gatehouse $@

$(GRAMMAR_DIR)/.complete: scripts/fetch-grammars
	@scripts/fetch-grammars
$(GRAMMAR_SRC): $(GRAMMAR_DIR)/.complete ;
grammars: $(GRAMMAR_OBJ)

$(BUILD)/grammars/%.o: $(GRAMMAR_DIR)/%.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) -std=c11 -O2 -g -w -fPIC -I$(dir $<) -c -o $@ $<

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/test_%: tests/unit/test_%.c $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  TEST  $@"
	@$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB_OBJ) $(LDLIBS) -lcmocka

deps:
	@scripts/install-deps

run: deps
	@$(MAKE) --no-print-directory all
	@scripts/demo $(if $(filter check,$(DEMO)),--check,)

test: deps
	@$(MAKE) --no-print-directory all $(UNIT_BIN)
	@$(MAKE) --no-print-directory check
	@GH_BUILD=$(BUILD) tests/run

check:
	@scripts/check-banned

fuzz: deps
	@scripts/fuzz $(FUZZ_TIME)

bench: deps all
	@bench/http_read/run
	@bench/pgbench/run

clean:
	rm -rf build

-include $(LIB_OBJ:.o=.d) $(MAIN_OBJ:.o=.d)
