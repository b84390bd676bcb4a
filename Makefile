# Top-level build of walproposer + safekeeper.
#
# PGXS builds the extension (walproposer.so, C++ compiled with PostgreSQL's
# own rules); the rules below it build, with the same compiler:
#   build/libwpcore.a    the IO-free consensus core (src/core/), no PG headers
#   build/libsafekeeper.a + build/safekeeper   the daemon (safekeeper/ and
#                        its subfolders; safekeeper/main.cpp is the program)
#   build/libwptestsupport.a   test and bench support (test/support/), never
#                        linked into build/safekeeper
#   build/unit_tests     Catch2 unit tests (test/unit/)
#   build/wpsim          the deterministic simulator (test/sim/)
# `make` builds all of them; `make install` installs the extension and puts
# `safekeeper` (and `walproposer-cluster` when present) into PostgreSQL's bin directory;
# `make test` runs every test layer (scripts/run-tests).

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
PG_INCLUDEDIR_SERVER := $(shell $(PG_CONFIG) --includedir-server)
PG_INCLUDEDIR_INTERNAL := $(shell $(PG_CONFIG) --includedir)/internal
PG_PKGLIBDIR := $(shell $(PG_CONFIG) --pkglibdir)
PG_LIBDIR := $(shell $(PG_CONFIG) --libdir)

# ---------------------------------------------------------------- extension
MODULE_big = walproposer
EXTENSION = walproposer
DATA = walproposer--1.0.sql
PGFILEDESC = "walproposer - quorum-durable WAL for PostgreSQL"

# src/pg/wal_fetch.cpp belongs to pg_walproposer_restore only.
PG_SOURCES := $(sort $(filter-out src/pg/wal_fetch.cpp,$(wildcard src/pg/*.cpp)))
OBJS = $(PG_SOURCES:.cpp=.o)

# Our own warnings are errors; PostgreSQL's headers are system headers so
# their warnings are not ours (-isystem overrides PGXS's plain -I for them).
WP_WARNINGS := -Wall -Wextra -Werror
PG_CPPFLAGS = -isystem $(PG_INCLUDEDIR_SERVER) -isystem $(PG_INCLUDEDIR_INTERNAL) \
              -I$(shell $(PG_CONFIG) --includedir) -Iinclude
PG_CXXFLAGS = -std=c++17 -fPIC $(WP_WARNINGS) -Wno-missing-field-initializers \
              -Wno-register -MMD -MP
SHLIB_LINK = build/libwpcore.a -L$(PG_LIBDIR) -lpq -lstdc++
EXTRA_CLEAN = build build-asan build-fuzz src/pg/*.d

# No LLVM bitcode: the JIT inlining bitcode is C-only and gains nothing here.
override with_llvm = no

REGRESS = walproposer

include $(PGXS)

# PGXS's `all` stays the default goal; our targets join it at the end.

$(shlib): build/libwpcore.a

-include $(OBJS:.o=.d)

# ------------------------------------------------------------ shared flags
# B: the build directory of the core, the daemon, the tests and the bench
# clients. `make test-sanitize` builds a second tree in build-asan/ with
# ASan+UBSan; the extension always links build/libwpcore.a.
B ?= build
WP_CXX ?= $(CXX)
WP_SANITIZE ?=
ifeq ($(WP_SANITIZE),)
WP_OPT := -O2 -g
else
# Sanitizer builds: -O1 with line tables only (-g1; reports still name file
# and line) compiles 2.3 times faster than -O2 -g under ASan+UBSan (104 s ->
# 45 s for safekeeper/http/http_api.cpp); the build of build-asan/ was most
# of the sanitize layer's time (17 min of about 24).
WP_OPT := -O1 -g1
endif
WP_CXXFLAGS := -std=c++17 $(WP_OPT) -fPIC $(WP_WARNINGS) -MMD -MP -Iinclude
ifneq ($(WP_SANITIZE),)
# GCC 12 reports false maybe-uninitialized warnings in libstdc++ under ASan.
WP_CXXFLAGS += -fsanitize=$(WP_SANITIZE) -fno-omit-frame-pointer -Wno-maybe-uninitialized
WP_LDFLAGS += -fsanitize=$(WP_SANITIZE)
endif

# ------------------------------------------------------------- core library
CORE_SOURCES := $(sort $(wildcard src/core/*.cpp))
CORE_OBJS := $(CORE_SOURCES:%.cpp=$(B)/obj/%.o)

$(B)/libwpcore.a: $(CORE_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# Core and daemon objects: compiled without any PostgreSQL include path, so a
# PostgreSQL header in them is a build error.
$(B)/obj/src/core/%.o: src/core/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -c -o $@ $<

# Every public core header must compile on its own, with no PG header.
CORE_HEADERS := $(sort $(wildcard include/walproposer/*.h))
$(B)/header-check.stamp: $(CORE_HEADERS)
	@mkdir -p $(@D)
	@for h in $(CORE_HEADERS); do \
	  echo "#include \"$${h#include/}\"" | \
	    $(WP_CXX) -std=c++17 $(WP_WARNINGS) -Iinclude -fsyntax-only -x c++ - || exit 1; \
	done
	@touch $@
all: $(B)/header-check.stamp

# ------------------------------------------------------------------ daemon
# Daemon sources live one folder below safekeeper/ (storage/, wire/, ...);
# includes name the folder ("storage/wal_storage.h"), found via -Isafekeeper.
SK_SOURCES := $(sort $(wildcard safekeeper/*/*.cpp))
SK_OBJS := $(SK_SOURCES:%.cpp=$(B)/obj/%.o)
SK_LIBS := -lcpp-httplib -lspdlog -lfmt -lpthread -lsystemd $(PG_PKGLIBDIR)/libpgcommon.a $(PG_PKGLIBDIR)/libpgport.a -lssl -lcrypto

# The two files of the daemon allowed PostgreSQL (frontend) headers: CRC-32C
# (libpgport) and the SCRAM primitives (libpgcommon).
PG_FRONTEND_FLAGS := -isystem $(PG_INCLUDEDIR_SERVER) -isystem $(PG_INCLUDEDIR_INTERNAL)
$(B)/obj/safekeeper/storage/crc32c.o: WP_EXTRA_FLAGS = $(PG_FRONTEND_FLAGS)
$(B)/obj/safekeeper/auth/scram_crypto.o: WP_EXTRA_FLAGS = $(PG_FRONTEND_FLAGS)
$(B)/obj/safekeeper/%.o: safekeeper/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Isafekeeper $(WP_EXTRA_FLAGS) -c -o $@ $<

$(B)/libsafekeeper.a: $(SK_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(B)/safekeeper: $(B)/obj/safekeeper/main.o $(B)/libsafekeeper.a $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^ $(SK_LIBS)

# TEST ONLY: test and bench support (test/support/): fault-injecting and
# power-loss file layers, a push-protocol client, a WAL generator, and the
# in-memory acceptor storage and WAL reader shared by the core's unit tests
# and the simulator. Their own library, so the production daemon never
# contains them.
TS_SOURCES := $(sort $(wildcard test/support/*.cpp))
TS_OBJS := $(TS_SOURCES:%.cpp=$(B)/obj/%.o)
$(B)/obj/test/support/%.o: test/support/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Isafekeeper -Itest -c -o $@ $<
$(B)/libwptestsupport.a: $(TS_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

# TEST ONLY: the daemon on the power-loss layer (test/support/power_loss_fs.h):
# SIGUSR2 drops every unsynced write and exits. Never installed.
$(B)/obj/safekeeper/main-powerloss.o: safekeeper/main.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -DWP_POWER_LOSS_FS -Isafekeeper -Itest -c -o $@ $<
$(B)/safekeeper-powerloss: $(B)/obj/safekeeper/main-powerloss.o $(B)/libwptestsupport.a $(B)/libsafekeeper.a $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^ $(SK_LIBS)

# TEST ONLY: the chaos harness's TCP relay, which can delay what it carries
# (test/chaos/chaos_relay.cpp). Never installed.
$(B)/obj/test/chaos/chaos_relay.o: test/chaos/chaos_relay.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -c -o $@ $<
$(B)/chaos-relay: $(B)/obj/test/chaos/chaos_relay.o
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^

# TEST ONLY: an LD_PRELOAD library that makes chosen host names resolve
# slowly or never (test/preload/slow_getaddrinfo.cpp). Never installed.
$(B)/libwp-slow-getaddrinfo.so: test/preload/slow_getaddrinfo.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -fPIC -shared -o $@ $< -ldl

# -------------------------------------------------------------------- tests
# Unit tests build messages with brace lists that leave trailing fields (the
# configuration fields of protocol version 4) at their defaults.
UNIT_SOURCES := $(sort $(wildcard test/unit/*.cpp))
UNIT_OBJS := $(UNIT_SOURCES:%.cpp=$(B)/obj/%.o)
$(B)/obj/test/unit/%.o: test/unit/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Isafekeeper -Itest -Wno-error=unused-parameter -Wno-missing-field-initializers -c -o $@ $<

# They also link the extension's libpq-only connection code (the tools'
# object of src/pg/safekeeper_conn.cpp: no server header) for its pure
# functions (test_pg_conninfo.cpp), its name resolver and its WAL window.
$(B)/unit_tests: $(UNIT_OBJS) $(B)/obj/tools/safekeeper_conn.o $(B)/obj/tools/name_resolver.o $(B)/obj/tools/wal_window.o $(B)/libwptestsupport.a $(B)/libsafekeeper.a $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^ $(SK_LIBS) -L$(PG_LIBDIR) -lpq

SIM_SOURCES := $(sort $(wildcard test/sim/*.cpp))
SIM_OBJS := $(SIM_SOURCES:%.cpp=$(B)/obj/%.o)
$(B)/obj/test/sim/%.o: test/sim/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Itest -c -o $@ $<

$(B)/wpsim: $(SIM_OBJS) $(B)/libwptestsupport.a $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^

# Command-line tools: tools/NAME.cpp is one program, $(B)/NAME, linked with
# the core and libpq. src/pg/safekeeper_conn.cpp uses libpq only (no server
# header) and src/pg/name_resolver.cpp neither, so the tools share the
# extension's connection code.
PG_INCLUDEDIR := $(shell $(PG_CONFIG) --includedir)
TOOL_SOURCES := $(sort $(wildcard tools/*.cpp))
TOOL_BINS := $(TOOL_SOURCES:tools/%.cpp=$(B)/%)
$(B)/obj/tools/%.o: tools/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -c -o $@ $<
$(B)/obj/tools/safekeeper_conn.o: src/pg/safekeeper_conn.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -isystem $(PG_INCLUDEDIR) -c -o $@ $<
$(B)/obj/tools/name_resolver.o: src/pg/name_resolver.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -c -o $@ $<
$(B)/obj/tools/wal_window.o: src/pg/wal_window.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -c -o $@ $<
$(TOOL_BINS): $(B)/%: $(B)/obj/tools/%.o $(B)/obj/tools/safekeeper_conn.o $(B)/obj/tools/name_resolver.o $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $(filter-out $(B)/libwpcore.a,$^) $(B)/libwpcore.a -L$(PG_LIBDIR) -lpq
# The restore tool: its libpq replication client, and the safekeeper's WAL
# segment naming (storage/wal_format).
$(B)/obj/tools/wal_fetch.o: src/pg/wal_fetch.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -isystem $(PG_INCLUDEDIR) -c -o $@ $<
$(B)/pg_walproposer_restore: $(B)/obj/tools/wal_fetch.o $(B)/libsafekeeper.a

# Benchmark clients: each bench/NAME.cpp is one program, $(B)/bench/NAME,
# driven by the bench/ scripts (which find it in $$WP_BIN_DIR or $(B)/bench).
BENCH_SOURCES := $(sort $(wildcard bench/*.cpp))
BENCH_BINS := $(BENCH_SOURCES:bench/%.cpp=$(B)/bench/%)
$(B)/obj/bench/%.o: bench/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Isafekeeper -Itest -c -o $@ $<
$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libwptestsupport.a $(B)/libsafekeeper.a $(B)/libwpcore.a
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^ $(SK_LIBS)

-include $(CORE_OBJS:.o=.d) $(SK_OBJS:.o=.d) $(TS_OBJS:.o=.d) $(B)/obj/safekeeper/main.d $(B)/obj/safekeeper/main-powerloss.d \
         $(B)/obj/test/chaos/chaos_relay.d \
         $(UNIT_OBJS:.o=.d) $(SIM_OBJS:.o=.d) $(BENCH_SOURCES:bench/%.cpp=$(B)/obj/bench/%.d) \
         $(TOOL_SOURCES:tools/%.cpp=$(B)/obj/tools/%.d) $(B)/obj/tools/safekeeper_conn.d $(B)/obj/tools/name_resolver.d $(B)/obj/tools/wal_window.d $(B)/obj/tools/wal_fetch.d

all: $(B)/libwpcore.a $(B)/safekeeper $(B)/safekeeper-powerloss $(B)/chaos-relay $(B)/libwp-slow-getaddrinfo.so $(B)/unit_tests $(if $(SIM_SOURCES),$(B)/wpsim) $(BENCH_BINS) \
     $(TOOL_BINS)

# ----------------------------------------------------------------- install
install: install-safekeeper
install-safekeeper: build/safekeeper $(TOOL_SOURCES:tools/%.cpp=build/%)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/safekeeper '$(DESTDIR)$(bindir)/safekeeper'
	@for t in $(TOOL_SOURCES:tools/%.cpp=%); do \
	  $(INSTALL_PROGRAM) build/$$t '$(DESTDIR)$(bindir)/'$$t || exit 1; done
	@if [ -f scripts/walproposer-cluster ]; then \
	  $(INSTALL_SCRIPT) scripts/walproposer-cluster '$(DESTDIR)$(bindir)/walproposer-cluster'; fi
	$(INSTALL_SCRIPT) integrations/patroni/walproposer-patroni '$(DESTDIR)$(bindir)/walproposer-patroni'
	$(MKDIR_P) '$(DESTDIR)$(datadir)/walproposer'
	$(INSTALL_DATA) integrations/patroni/patroni.yml.in '$(DESTDIR)$(datadir)/walproposer/patroni.yml.in'

# -------------------------------------------------------------------- tests
.PHONY: test test-unit test-sim test-regress test-tap test-sanitize install-safekeeper format
test:
	scripts/run-tests all
test-unit:
	scripts/run-tests unit
test-sim:
	scripts/run-tests sim
test-regress:
	scripts/run-tests regress
test-tap:
	scripts/run-tests tap

# The core, the daemon and their tests under AddressSanitizer and
# UndefinedBehaviorSanitizer, in their own build tree.
test-sanitize:
	$(MAKE) --no-print-directory B=build-asan WP_SANITIZE=address,undefined \
	    build-asan/unit_tests build-asan/wpsim build-asan/safekeeper build-asan/safekeeper-powerloss
	WP_SAFEKEEPER_BIN=build-asan/safekeeper WP_SAFEKEEPER_POWERLOSS_BIN=build-asan/safekeeper-powerloss \
	    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-asan/unit_tests
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-asan/wpsim --seeds 1..300
	UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-asan/wpsim --membership --seeds 1..100

format:
	clang-format -i $$(git ls-files '*.cpp' '*.h')

# ------------------------------------------------------------------ fuzzing
# One libFuzzer target per parser of outside input (test/fuzz/fuzz_*.cpp),
# built with clang (Debian's clang + libfuzzer-14-dev) and ASan+UBSan in its
# own tree, build-fuzz/. `make fuzz` builds them; `scripts/run-tests fuzz`
# replays each committed corpus (test/fuzz/corpus/<target>/) and fuzzes a
# few seconds; `make fuzz-seeds` rewrites the seed corpora (docs/security.md).
FUZZ_SOURCES := $(sort $(wildcard test/fuzz/fuzz_*.cpp))
FUZZ_BINS := $(FUZZ_SOURCES:test/fuzz/%.cpp=build-fuzz/%)
FUZZ_CXX ?= clang++
.PHONY: fuzz fuzz-seeds
fuzz:
	$(MAKE) --no-print-directory B=build-fuzz WP_SANITIZE=fuzzer-no-link,address,undefined \
	    WP_CXX="$(FUZZ_CXX) -Wno-unknown-warning-option" $(FUZZ_BINS)
$(B)/obj/test/fuzz/%.o: test/fuzz/%.cpp
	@mkdir -p $(@D)
	$(WP_CXX) $(WP_CXXFLAGS) -Isafekeeper -Itest -c -o $@ $<
# Only the daemon's parsers and what they need, not the whole daemon (the
# HTTP server alone would double the build time).
FUZZ_SK_OBJS := $(addprefix build-fuzz/obj/safekeeper/,retention/slot_store.o storage/control_file.o storage/crc32c.o \
    storage/durable_file.o storage/wal_decoder.o storage/wal_format.o wire/pg_wire.o \
    wire/replication_command.o wire/tls.o wire/authentication.o auth/roles.o auth/scram.o \
    auth/scram_crypto.o http/http_auth.o pull_timeline/http_format.o)
build-fuzz/fuzz_%: build-fuzz/obj/test/fuzz/fuzz_%.o $(FUZZ_SK_OBJS) build-fuzz/libwpcore.a
	$(WP_CXX) -fsanitize=fuzzer,address,undefined -o $@ $^ $(SK_LIBS)
-include $(FUZZ_SOURCES:%.cpp=$(B)/obj/%.d) $(B)/obj/test/fuzz/seed_corpus.d
fuzz-seeds: $(B)/fuzz-seed-corpus
	$(B)/fuzz-seed-corpus test/fuzz/corpus
$(B)/fuzz-seed-corpus: $(B)/obj/test/fuzz/seed_corpus.o $(B)/libwptestsupport.a $(B)/libsafekeeper.a $(B)/libwpcore.a
	$(WP_CXX) $(WP_LDFLAGS) -o $@ $^ $(SK_LIBS)
