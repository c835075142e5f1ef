# messenger: build, test, benchmark.
#   make              library (static + shared), examples and tools into build/
#   make test         Criterion suite (installs Criterion on Debian as root, else says what to do)
#   make sanitize     suite under ASan+UBSan        make tsan    suite under TSan
#   make stress       thread and process tests 20 times in a row
#   make demo         the main demo (two_workers) on anonymous shared memory
#   make examples-check  every example, each checking its own result
#   make expand       what the example definitions expand to
#   make install      headers, libraries, messenger.pc, msgr and its man page under
#                     $(DESTDIR)$(PREFIX) (PREFIX=/usr/local; also LIBDIR, INCLUDEDIR, ...)
#   make uninstall    removes what make install put there
#   make bench        ring_bench, full table        make bench-smoke   reduced set (< 30 s)
#   make bench-compare  messenger beside its peers (< 5 min)   make bench-compare-quick  (< 1 min)
#   CC=clang make ... any of the above with clang

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
SAN     ?=
CFLAGS_BASE = -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
              -Wmissing-prototypes -fPIC -pthread -Iinclude -Imacros -Isrc -fno-strict-aliasing
ifneq ($(SAN),)
CFLAGS_BASE += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDSAN = -fsanitize=$(SAN)
# TSan does not model stand-alone fences (gcc says so with -Wtsan). Ours only serve the
# sleep/wake handshake; every payload hand-off is a release/acquire pair TSan does check.
ifeq ($(SAN),thread)
CFLAGS_BASE += $(shell $(CC) -Werror -Wno-tsan -x c -c /dev/null -o /dev/null 2>/dev/null && echo -Wno-tsan)
endif
endif
CFLAGS  ?=
ALL_CFLAGS = $(CFLAGS_BASE) $(WIN_FLAGS) $(CFLAGS)
LDLIBS  = -pthread $(LDSAN) $(WIN_LIBS)

# The platform layer: the OS files for the target (a cross compiler's triplet decides).
TARGET_OS := $(shell $(CC) -dumpmachine 2>/dev/null)
ifneq ($(findstring mingw,$(TARGET_OS)),)
OS_SRC = src/os/win32.c mmap/win32.c src/ipc/win32.c
# mingw's own C99 printf (%zu, %llu); one static program (no DLLs to find under wine);
# WaitOnAddress lives in the synchronization library.
WIN_FLAGS = -D__USE_MINGW_ANSI_STDIO=1
WIN_LIBS = -static -lsynchronization -ladvapi32
else ifneq ($(findstring darwin,$(TARGET_OS)),)
OS_SRC = src/os/posix.c src/os/darwin.c mmap/posix.c src/ipc/posix.c
else
OS_SRC = src/os/posix.c src/os/linux.c mmap/posix.c src/ipc/posix.c
endif

SOVERSION = 0
VERSION   = 0.1.0

LIB_SRC = src/os/error.c $(OS_SRC) mmap/region.c src/ipc/conn.c bus/wait.c bus/ring.c bus/ring_claim.c bus/ring_read.c bus/ring_repair.c bus/bcast.c \
          bus/crc32c.c bus/durable.c bus/log.c bus/log_record.c bus/log_append.c bus/log_read.c \
          bus/log_recover.c bus/named.c bus/journal.c \
          src/inbox.c src/bus.c src/router.c src/worker.c src/registry.c src/notify.c src/acks.c src/bus_inspect.c src/broadcast.c
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
LIB_HDR = $(wildcard include/*.h include/msgr/*.h src/*.h src/os/*.h mmap/*.h bus/*.h macros/*.h)

STATIC = $(BUILD)/lib/libmessenger.a
SHARED = $(BUILD)/lib/libmessenger.so.$(VERSION)

EXAMPLES = ring_pingpong two_workers pipeline multi_process serialized orders ipc_echo registry
TOOLS    = ring_bench bench_compare msgr fd_bench
TEST_HELPERS = ring_peer crash_test ipc_peer
TESTS    = os_test crc_test crc_portable_test region_test ring_test ring_threads_test ring_process_test ring_crash_test ring_badinput_test peer_test ipc_test ipc_portable_test registry_test registry_portable_test \
           runtime_test log_test log_single_test log_crash_test log_powerloss_test log_corruption_test journal_test fault_test cycle_test notify_test acks_test bcast_test fanout_test

# Optional parts, built when their Debian package is installed (checked once per make).
has_header = $(shell printf '\043include <%s>\n' $(1) | $(CC) -E -x c - >/dev/null 2>&1 && echo 1)
# The JSON-RPC example needs jansson (apt-get install libjansson-dev).
HAVE_JANSSON := $(call has_header,jansson.h)
JSON_EXAMPLES = $(if $(HAVE_JANSSON),jsonrpc_server jsonrpc_client)
# The NATS bridge, a library of its own, needs libnats (apt-get install libnats-dev; its tests
# and demo also nats-server).
HAVE_NATS := $(call has_header,nats/nats.h)
NATS_LIB = $(BUILD)/lib/libmessenger-nats.a
# The event-loop example needs libuv (apt-get install libuv1-dev).
HAVE_UV := $(call has_header,uv.h)
UV_EXAMPLES = $(if $(HAVE_UV),ui_loop)

BINS = $(EXAMPLES:%=$(BUILD)/bin/%) $(TOOLS:%=$(BUILD)/bin/%) $(JSON_EXAMPLES:%=$(BUILD)/bin/%) \
       $(UV_EXAMPLES:%=$(BUILD)/bin/%)
TEST_BINS = $(TESTS:%=$(BUILD)/tests/%)
HELPER_BINS = $(TEST_HELPERS:%=$(BUILD)/tests/%)

.PHONY: install uninstall package-test all lib test sanitize tsan stress demo bench bench-smoke bench-compare bench-compare-quick bench-plots examples-check expand clean criterion crash-test fuzz
.DELETE_ON_ERROR:

all: lib $(BINS)
lib: $(STATIC) $(SHARED)

# Hidden by default: only what the public headers mark MSGR_API is exported from the .so.
$(BUILD)/obj/%.o: %.c $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -fvisibility=hidden -c $< -o $@

$(STATIC): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libmessenger.so.$(SOVERSION) -o $@ $^ $(LDLIBS)
	ln -sf libmessenger.so.$(VERSION) $(BUILD)/lib/libmessenger.so.$(SOVERSION)
	ln -sf libmessenger.so.$(SOVERSION) $(BUILD)/lib/libmessenger.so

# An example in a folder of its own.
$(BUILD)/bin/orders: examples/orders/orders.c examples/orders/orders.def.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)

$(NATS_LIB): src/nats/bridge.c include/msgr/nats.h $(LIB_HDR)
	@mkdir -p $(BUILD)/obj/src/nats $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $(BUILD)/obj/src/nats/bridge.o
	rm -f $@ && ar rcs $@ $(BUILD)/obj/src/nats/bridge.o
$(BUILD)/tests/nats_test: tests/nats_test.c tests/nats_v2.c tests/nats.def.h tests/test_util.h $(NATS_LIB) $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes tests/nats_test.c tests/nats_v2.c -o $@ \
	  $(NATS_LIB) $(STATIC) -lcriterion -lnats $(LDLIBS)
$(BUILD)/bin/two_machines: examples/two_machines/two_machines.c examples/two_machines/two_machines.def.h examples/proc.h $(NATS_LIB) $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(NATS_LIB) $(STATIC) -lnats $(LDLIBS)
$(BUILD)/bin/nats_bench: bench/nats_bench.c bench/nats_bench.def.h bench/bench_util.h $(NATS_LIB) $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(NATS_LIB) $(STATIC) -lnats $(LDLIBS)
$(BUILD)/bin/ui_loop: examples/ui_loop/ui_loop.c examples/ui_loop/ui_loop.def.h examples/proc.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS) -luv
$(BUILD)/bin/jsonrpc_%: examples/jsonrpc/jsonrpc_%.c examples/jsonrpc/jsonrpc.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) -ljansson $(LDLIBS)

$(BUILD)/bin/%: examples/%.c $(STATIC) $(LIB_HDR) $(wildcard examples/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)

$(BUILD)/bin/msgr: src/msgr_cli.c $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)

RING_BENCH_SRC = bench/ring_bench.c bench/ring_bench_run.c bench/ring_bench_slices.c
$(BUILD)/bin/ring_bench: $(RING_BENCH_SRC) bench/ring_bench.h bench/bench_util.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(RING_BENCH_SRC) -o $@ $(STATIC) $(LDLIBS) -lm

$(BUILD)/bin/%: bench/%.c $(STATIC) $(LIB_HDR) bench/bench_util.h
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS) -lm

# bench_compare measures the peers whose development packages are installed (checked here, once
# per make run); the others are listed as skipped with the package to install.
# atomic_queue is a C++ header library: a small adapter compiled with $(CXX) (bench only).
CXX ?= g++
has_cxx_header = $(shell printf '\043include <%s>\n' $(1) | $(CXX) -std=c++17 -E -x c++ - >/dev/null 2>&1 && echo 1)
HAVE_AQ := $(call has_cxx_header,atomic_queue/atomic_queue.h)
AQ_OBJ  = $(if $(HAVE_AQ),$(BUILD)/obj/bench/atomic_queue_adapter.o)
# iceoryx's headers live under a versioned directory.
ICEORYX_INC := $(patsubst %/iceoryx_binding_c/runtime.h,%,$(firstword $(wildcard /usr/include/iceoryx/*/iceoryx_binding_c/runtime.h)))
PEER_FLAGS = $(if $(call has_header,zmq.h),-DHAVE_ZMQ) $(if $(call has_header,nng/nng.h),-DHAVE_NNG) \
             $(if $(call has_header,ck_ring.h),-DHAVE_CK) $(if $(HAVE_AQ),-DHAVE_AQ) \
             $(if $(ICEORYX_INC),-DHAVE_ICEORYX -isystem $(ICEORYX_INC))
PEER_LIBS  = $(if $(findstring HAVE_ZMQ,$(PEER_FLAGS)),-lzmq) \
             $(if $(findstring HAVE_NNG,$(PEER_FLAGS)),-lnng) \
             $(if $(findstring HAVE_CK,$(PEER_FLAGS)),-lck) $(if $(ICEORYX_INC),-liceoryx_binding_c) \
             $(if $(HAVE_AQ)$(ICEORYX_INC),-lstdc++) -lrt
$(BUILD)/obj/bench/atomic_queue_adapter.o: bench/atomic_queue_adapter.cpp bench/atomic_queue_adapter.h
	@mkdir -p $(dir $@)
	$(CXX) -std=c++17 -O2 -g -Wall -Wextra -Werror $(filter -fsanitize% -fno-omit-frame-pointer,$(ALL_CFLAGS)) -c $< -o $@
$(BUILD)/bin/bench_compare: bench/bench_compare.c bench/compare_msgr.c bench/compare_run.c bench/compare_goals.c bench/compare_bcast.c bench/compare_report.c bench/peers.c bench/peers_os.c bench/peers_iceoryx.c bench/compare_ipc.c bench/compare.h bench/compare_run.h bench/bench_util.h $(AQ_OBJ) $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PEER_FLAGS) bench/bench_compare.c bench/compare_msgr.c bench/compare_run.c bench/compare_goals.c bench/compare_bcast.c bench/compare_report.c bench/peers.c bench/peers_os.c bench/peers_iceoryx.c bench/compare_ipc.c $(AQ_OBJ) -o $@ $(STATIC) $(LDLIBS) $(PEER_LIBS) -lm

# ---- tests ----
criterion:
	@sh tests/ensure-criterion.sh

# Under TSan and in cross builds the tests compile against tests/shim (Criterion cannot start
# under TSan, and no cross build of it is installed; see tests/shim/criterion/criterion.h);
# everywhere else against the real Criterion.
ifeq ($(SAN),thread)
SHIM = 1
endif
ifeq ($(SHIM),1)
TEST_CFLAGS = -Itests/shim -Wno-unused-function -Wno-format-zero-length
TEST_LIBS   =
TEST_DEPS   = tests/shim/criterion/criterion.h tests/shim/criterion/parameterized.h
else
TEST_CFLAGS =
TEST_LIBS   = -lcriterion
TEST_DEPS   = criterion
endif

$(BUILD)/tests/%_test: tests/%_test.c tests/test_util.h $(STATIC) $(LIB_HDR) | $(TEST_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -Wno-missing-prototypes $< $($(*F)_test_EXTRA) -o $@ \
	  $(STATIC) $(TEST_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/test_util.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)

# The portable CRC test compiles the CRC source and the CRC tests into one program.
$(BUILD)/tests/crc_portable_test: bus/crc32c.c tests/crc_test.c

# The log tests share their helpers.
$(BUILD)/tests/log_test $(BUILD)/tests/log_single_test $(BUILD)/tests/log_crash_test \
$(BUILD)/tests/log_powerloss_test: tests/log_util.h

$(BUILD)/tests/cycle_test: tests/cycle.def.h
$(BUILD)/tests/notify_test: tests/fd.def.h
$(BUILD)/tests/acks_test: tests/acks.def.h

# Extra sources linked into a test program.
RT_SCHEMA_VARIANTS = $(foreach v,2 3 4 5 6 7,tests/rt_schema_v$(v).c)
$(BUILD)/tests/runtime_test: $(RT_SCHEMA_VARIANTS) tests/rt.def.h tests/rt_schema_variants.h
runtime_test_EXTRA = $(RT_SCHEMA_VARIANTS)

# MSGR_TEST_BIN tells the process tests where the separately started peer program is.
test: all $(TEST_BINS) $(HELPER_BINS)
	@echo "== compile-fail tests (definition mistakes must not compile)"
	@CC="$(CC)" sh tests/compile_fail.sh
	@echo "== the msgr tool"
	@sh tests/cli_test.sh $(BUILD)
	@echo "== the guide's code (docs/guide.md)"
	@$(if $(filter thread,$(SAN)),echo "skipped under TSan (it cannot follow the guide's second process)",CC="$(CC) $(if $(SAN),-fsanitize=$(SAN))" sh tests/guide_test.sh $(BUILD))
	@echo "== the installed package"
	@$(if $(SAN),echo "skipped under sanitizers (the package is the plain build)",sh tests/package_test.sh $(BUILD))
	@set -e; for t in $(TEST_BINS); do \
	  echo "== $$t"; MSGR_TEST_BIN=$(BUILD)/tests $(TEST_ENV) $$t --jobs 1 $(TEST_ARGS); done
	@echo "all tests passed ($(BUILD))"

sanitize:
	$(MAKE) BUILD=build/asan SAN=address,undefined OPT=-O1 test examples-check EXAMPLES_QUICK=1 \
	  crash-test KILLS=100 \
	  TEST_ENV="ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1"

# EXAMPLES_ONE_PROCESS: TSan cannot see synchronisation through another process (space a
# consumer there freed, then reused by two producer threads here, looks like a race), so the
# examples whose producer threads share an inbox with another process run only in one process.
tsan:
	$(MAKE) BUILD=build/tsan SAN=thread OPT=-O1 test examples-check EXAMPLES_QUICK=1 EXAMPLES_ONE_PROCESS=1 \
	  TEST_ENV="TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 MSGR_TEST_SCALE=tsan"

STRESS_RUNS ?= 20
stress: all $(TEST_BINS) $(HELPER_BINS)
	@set -e; for i in $$(seq 1 $(STRESS_RUNS)); do \
	  for t in ring_threads_test ring_process_test; do \
	    MSGR_TEST_BIN=$(BUILD)/tests $(BUILD)/tests/$$t --jobs 1 >$(BUILD)/stress-$$t.log 2>&1 || \
	      { echo "stress: $$t failed on run $$i; its output:"; cat $(BUILD)/stress-$$t.log; exit 1; }; \
	  done; echo "stress run $$i/$(STRESS_RUNS) ok"; done

# The main demo: two workers ping-ponging over the embedded default (anonymous memory).
demo: all
	$(BUILD)/bin/two_workers

# Every example checks its own result and exits non-zero when it is wrong.
EXAMPLES_QUICK ?=
examples-check: all
	$(BUILD)/bin/ring_pingpong $(if $(EXAMPLES_QUICK),--count 20000)
	$(BUILD)/bin/two_workers $(if $(EXAMPLES_QUICK),--rounds 20000)
	$(BUILD)/bin/two_workers --park $(if $(EXAMPLES_QUICK),--rounds 20000,--rounds 200000)
	$(BUILD)/bin/pipeline $(if $(EXAMPLES_QUICK),--items 20000)
	$(BUILD)/bin/multi_process $(if $(EXAMPLES_QUICK),--count 20000)
	$(BUILD)/bin/serialized $(if $(EXAMPLES_QUICK),--orders 5000)
	$(BUILD)/bin/orders $(if $(EXAMPLES_QUICK),--orders 5000)
	$(if $(EXAMPLES_ONE_PROCESS),,$(BUILD)/bin/orders --shm $(if $(EXAMPLES_QUICK),--orders 5000))
	@mkdir -p $(BUILD)/orders-file
	$(if $(EXAMPLES_ONE_PROCESS),,$(BUILD)/bin/orders --file $(BUILD)/orders-file $(if $(EXAMPLES_QUICK),--orders 5000,--orders 20000))
	$(BUILD)/bin/ipc_echo $(if $(EXAMPLES_QUICK),--count 2000)
	$(if $(EXAMPLES_ONE_PROCESS),,$(BUILD)/bin/registry $(if $(EXAMPLES_QUICK),--count 20000))
	@$(if $(HAVE_JANSSON),sh tests/jsonrpc_test.sh $(BUILD),echo "jsonrpc example skipped: apt-get install libjansson-dev")
	$(if $(HAVE_UV),$(if $(EXAMPLES_ONE_PROCESS),,$(BUILD)/bin/ui_loop $(if $(EXAMPLES_QUICK),--count 2000)),@echo "ui_loop example skipped: apt-get install libuv1-dev")

# What the example definitions expand to (the generated code, formatted when clang-format exists).
expand:
	@for d in examples/*.def.h; do echo "/* ==== $$d ==== */"; \
	  $(CC) -E -P -Iinclude -Imacros -x c $$d | \
	  sed -n '/enum pingpong_msg_id\|enum pipeline_msg_id\|enum multiproc_msg_id\|enum shop_msg_id/,$$p' | \
	  (command -v clang-format >/dev/null && clang-format || cat); done

# Producers and consumers of one bus file killed at random instants; then every number must
# be there, in order, without a gap, and nothing pending. Then the same with one producer at a
# time on a single-producer log, and over an MPSC ring in named shared memory.
KILLS ?= 1000
crash-test: all $(BUILD)/tests/crash_test $(BUILD)/tests/ring_peer
	$(BUILD)/tests/crash_test --kills $(KILLS) --msgr $(BUILD)/bin/msgr
	$(BUILD)/tests/crash_test --kills $(KILLS) --msgr $(BUILD)/bin/msgr --single-producer
	$(BUILD)/tests/crash_test --kills $(KILLS) --memory --peer $(BUILD)/tests/ring_peer

# libFuzzer over opening and recovering log files, over journal files, over what an IPC peer
# sends and over a ring's shared memory (clang with libclang-rt). FUZZ_SECONDS=60 each.
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
fuzz:
	@printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return (int)(d && n) * 0; }\n' | \
	  $(FUZZ_CC) -fsanitize=fuzzer -x c - -o /dev/null 2>/dev/null || \
	  { echo "make fuzz needs clang with libFuzzer: apt-get install clang libclang-rt-14-dev"; exit 1; }
	$(MAKE) CC=$(FUZZ_CC) BUILD=build/fuzz SAN=address,undefined,fuzzer-no-link OPT=-O1 lib build/fuzz/tests/fuzz_seed
	@mkdir -p build/fuzz/corpus
	build/fuzz/tests/fuzz_seed build/fuzz/corpus/seed.log
	build/fuzz/tests/fuzz_seed build/fuzz/corpus/seed-single.log single
	$(FUZZ_CC) -std=c11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined tests/fuzz_log.c \
	  build/fuzz/lib/libmessenger.a -pthread -o build/fuzz/fuzz_log
	build/fuzz/fuzz_log -max_total_time=$(FUZZ_SECONDS) -max_len=20000 -timeout=10 \
	  -rss_limit_mb=2048 build/fuzz/corpus
	@mkdir -p build/fuzz/corpus-journal
	$(FUZZ_CC) -std=c11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined tests/fuzz_journal.c \
	  build/fuzz/lib/libmessenger.a -pthread -o build/fuzz/fuzz_journal
	build/fuzz/fuzz_journal -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  -rss_limit_mb=2048 build/fuzz/corpus-journal
	@mkdir -p build/fuzz/corpus-ipc
	$(FUZZ_CC) -std=c11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined tests/fuzz_ipc.c \
	  build/fuzz/lib/libmessenger.a -pthread -o build/fuzz/fuzz_ipc
	build/fuzz/fuzz_ipc -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
	  -rss_limit_mb=2048 build/fuzz/corpus-ipc
	@mkdir -p build/fuzz/corpus-ring
	$(FUZZ_CC) -std=c11 -g -O1 -Iinclude -Isrc -fsanitize=fuzzer,address,undefined tests/fuzz_ring.c \
	  build/fuzz/lib/libmessenger.a -pthread -o build/fuzz/fuzz_ring
	build/fuzz/fuzz_ring -max_total_time=$(FUZZ_SECONDS) -max_len=512 -timeout=10 \
	  -rss_limit_mb=2048 build/fuzz/corpus-ring

# The NATS bridge against a real nats-server (each test starts its own on a free port).
.PHONY: bridge-test bridge-demo
bridge-test: all
	@if [ -z "$(HAVE_NATS)" ] || ! command -v nats-server >/dev/null; then \
	  echo "bridge-test skipped: apt-get install libnats-dev nats-server"; exit 0; fi; \
	  $(MAKE) --no-print-directory $(BUILD)/tests/nats_test && $(BUILD)/tests/nats_test

# two_machines through a nats-server started here (JetStream, a temporary store, a free port of
# 127.0.0.1), stopped afterwards however the run ends.
bridge-demo: all
	@if [ -z "$(HAVE_NATS)" ] || ! command -v nats-server >/dev/null; then \
	  echo "bridge-demo skipped: apt-get install libnats-dev nats-server"; exit 0; fi; \
	  $(MAKE) --no-print-directory $(BUILD)/bin/two_machines && sh examples/two_machines/demo.sh $(BUILD)

bench: all
	$(BUILD)/bin/ring_bench
	$(BUILD)/bin/fd_bench

bench-smoke: all
	$(BUILD)/bin/ring_bench --smoke
	$(BUILD)/bin/fd_bench --rounds 1 --count 200000 --pings 200

# messenger beside pipe, Unix socket, POSIX mq, ZeroMQ, nng and ck_ring, plus the machine's floor.
# Results in bench/results (CSV, Markdown; PNG plots when gnuplot is installed).
# Peers: apt-get install libzmq3-dev libnng-dev libck-dev gnuplot-nox (each optional).
BENCH_OUT ?= bench/results
bench-compare: all
	$(BUILD)/bin/bench_compare --out $(BENCH_OUT)
	@$(MAKE) --no-print-directory bench-nats NATS_BENCH_ARGS="--out $(BENCH_OUT) $(NATS_BENCH_ARGS)"
	@$(MAKE) --no-print-directory bench-plots
bench-compare-quick: all
	$(BUILD)/bin/bench_compare --quick --out $(BENCH_OUT)
	@$(MAKE) --no-print-directory bench-plots
# The NATS bridge against libnats publishing directly (needs libnats-dev and nats-server).
bench-nats:
	@if [ -z "$(HAVE_NATS)" ] || ! command -v nats-server >/dev/null; then \
	  echo "bench-nats skipped: apt-get install libnats-dev nats-server"; exit 0; fi; \
	  $(MAKE) --no-print-directory $(BUILD)/bin/nats_bench && $(BUILD)/bin/nats_bench $(NATS_BENCH_ARGS)
bench-plots:
	@if command -v gnuplot >/dev/null 2>&1; then \
	    cd $(BENCH_OUT) && gnuplot plot.gp && echo "plots: $(BENCH_OUT)/throughput.png $(BENCH_OUT)/latency.png"; \
	else echo "gnuplot not installed (apt-get install gnuplot-nox): no plots drawn"; fi

# ---- other architectures ----
# The library, msgr, the examples and the test suite cross-built for ARCH (aarch64) and run
# under qemu-user (apt-get install gcc-aarch64-linux-gnu qemu-user). The tests' helper programs
# run through the emulator too (MSGR_TEST_WRAP). Not run there: the examples that start copies
# of themselves (multi_process, orders --shm, orders --file), unless binfmt_misc runs foreign
# binaries (qemu-user-binfmt): an emulated program cannot exec another one by itself. Not
# checked there: that a prefaulted region's pages are resident (qemu-user acknowledges
# madvise(MADV_POPULATE_WRITE) without acting on it).
ARCH ?= aarch64
CROSS_CC ?= $(ARCH)-linux-gnu-gcc
CROSS_BUILD = build/$(ARCH)
QEMU_RUN = qemu-$(ARCH) -L /usr/$(ARCH)-linux-gnu
CROSS_BINFMT = $(wildcard /proc/sys/fs/binfmt_misc/qemu-$(ARCH))
.PHONY: cross-test cross-bins
cross-bins: lib $(EXAMPLES:%=$(BUILD)/bin/%) $(BUILD)/bin/msgr $(TEST_BINS) $(HELPER_BINS)
cross-test:
	@command -v $(CROSS_CC) >/dev/null && command -v qemu-$(ARCH) >/dev/null || \
	  { echo "make cross-test needs $(CROSS_CC) and qemu-$(ARCH): apt-get install gcc-$(ARCH)-linux-gnu qemu-user"; exit 1; }
	$(MAKE) CC=$(CROSS_CC) BUILD=$(CROSS_BUILD) SHIM=1 cross-bins
	@set -e; for t in $(TESTS); do echo "== $(ARCH): $$t"; \
	  MSGR_TEST_BIN=$(CROSS_BUILD)/tests MSGR_TEST_WRAP="$(QEMU_RUN)" $(QEMU_RUN) $(CROSS_BUILD)/tests/$$t; done
	$(QEMU_RUN) $(CROSS_BUILD)/bin/ring_pingpong --count 20000
	$(QEMU_RUN) $(CROSS_BUILD)/bin/two_workers --rounds 20000
	$(QEMU_RUN) $(CROSS_BUILD)/bin/two_workers --park --rounds 20000
	$(QEMU_RUN) $(CROSS_BUILD)/bin/pipeline --items 20000
	$(QEMU_RUN) $(CROSS_BUILD)/bin/serialized --orders 5000
	$(QEMU_RUN) $(CROSS_BUILD)/bin/orders --orders 5000
	$(if $(CROSS_BINFMT),$(QEMU_RUN) $(CROSS_BUILD)/bin/multi_process --count 20000,@echo "multi_process, orders --shm/--file: skipped (no binfmt_misc entry for qemu-$(ARCH))")
	$(if $(CROSS_BINFMT),$(QEMU_RUN) $(CROSS_BUILD)/bin/orders --shm --orders 5000)
	@echo "all $(ARCH) tests passed under qemu ($(CROSS_BUILD))"

# ---- Windows ----
# Cross-built with mingw-w64 and run under wine (apt-get install gcc-mingw-w64-x86-64 wine).
# The tests run through tests/shim (each test in a process of its own: the test program started
# again). Not built for Windows, because they fork() or map memory with mmap themselves: os_test
# region_test ring_process_test ring_crash_test runtime_test log_test log_single_test
# log_crash_test log_powerloss_test journal_test fault_test (what they check of the platform
# layer across processes, peer_test checks on every platform); and the example ring_pingpong (a
# parent and its forked child).
WIN_CC ?= x86_64-w64-mingw32-gcc
WIN_BUILD = build/windows
WINE ?= wine
WIN_TESTS = crc_test crc_portable_test ring_test ring_threads_test ring_badinput_test peer_test \
            log_corruption_test cycle_test ipc_portable_test registry_portable_test
WIN_EXAMPLES = two_workers pipeline serialized multi_process orders ipc_echo registry
.PHONY: windows windows-bins windows-test
windows:
	@command -v $(WIN_CC) >/dev/null || \
	  { echo "make windows needs $(WIN_CC): apt-get install gcc-mingw-w64-x86-64"; exit 1; }
	$(MAKE) CC=$(WIN_CC) BUILD=$(WIN_BUILD) SHIM=1 windows-bins
windows-bins: $(STATIC) $(WIN_EXAMPLES:%=$(BUILD)/bin/%.exe) $(BUILD)/bin/msgr.exe \
              $(WIN_TESTS:%=$(BUILD)/tests/%.exe) $(BUILD)/tests/ring_peer.exe $(BUILD)/tests/ipc_peer.exe
$(BUILD)/bin/orders.exe: examples/orders/orders.c examples/orders/orders.def.h examples/proc.h $(STATIC) $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)
$(BUILD)/bin/msgr.exe: src/msgr_cli.c $(STATIC) $(LIB_HDR)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)
$(BUILD)/bin/%.exe: examples/%.c $(STATIC) $(LIB_HDR) $(wildcard examples/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< -o $@ $(STATIC) $(LDLIBS)
$(BUILD)/tests/%.exe: tests/%.c tests/test_util.h tests/shim/criterion/criterion.h $(STATIC) $(LIB_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/shim -Wno-unused-function -Wno-format-zero-length \
	  -Wno-missing-prototypes $< -o $@ $(STATIC) $(LDLIBS)
$(BUILD)/tests/crc_portable_test.exe: bus/crc32c.c tests/crc_test.c
windows-test: windows
	@command -v $(WINE) >/dev/null || { echo "make windows-test needs wine: apt-get install wine"; exit 1; }
	@set -e; for t in $(WIN_TESTS); do echo "== windows: $$t"; \
	  WINEDEBUG=-all MSGR_TEST_BIN=$(WIN_BUILD)/tests $(WINE) $(WIN_BUILD)/tests/$$t.exe; done
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) two_workers.exe --rounds 20000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) two_workers.exe --park --rounds 20000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) pipeline.exe --items 20000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) serialized.exe --orders 5000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) multi_process.exe --count 20000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) orders.exe --orders 5000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) ipc_echo.exe --count 2000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) registry.exe --count 2000
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) orders.exe --shm --orders 5000
	@mkdir -p $(WIN_BUILD)/bin/orders-file
	cd $(WIN_BUILD)/bin && WINEDEBUG=-all $(WINE) orders.exe --file orders-file --orders 20000
	@echo "all Windows tests passed under wine ($(WIN_BUILD))"

# ---- installing ----
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
PUBLIC_HDR = $(filter-out include/msgr/nats.h,$(wildcard include/msgr/*.h))
# msgr/nats.h belongs to libmessenger-nats (built apart when libnats is present), not the core.

$(BUILD)/messenger.pc: docs/messenger.pc.in Makefile
	@mkdir -p $(dir $@)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@VERSION@|$(VERSION)|' $< > $@

install: lib $(BUILD)/bin/msgr $(BUILD)/messenger.pc
	install -d $(DESTDIR)$(INCLUDEDIR)/msgr $(DESTDIR)$(LIBDIR) $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1
	install -m 644 include/messenger.h macros/msgr_app.h $(DESTDIR)$(INCLUDEDIR)
	install -m 644 $(PUBLIC_HDR) $(DESTDIR)$(INCLUDEDIR)/msgr
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)
	ln -sf libmessenger.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmessenger.so.$(SOVERSION)
	ln -sf libmessenger.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmessenger.so
	install -m 644 $(BUILD)/messenger.pc $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(BUILD)/bin/msgr $(DESTDIR)$(BINDIR)
	install -m 644 docs/msgr.1 $(DESTDIR)$(MANDIR)/man1

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/messenger.h $(DESTDIR)$(INCLUDEDIR)/msgr_app.h
	rm -f $(PUBLIC_HDR:include/msgr/%=$(DESTDIR)$(INCLUDEDIR)/msgr/%)
	-rmdir $(DESTDIR)$(INCLUDEDIR)/msgr 2>/dev/null
	rm -f $(DESTDIR)$(LIBDIR)/libmessenger.a $(DESTDIR)$(LIBDIR)/libmessenger.so \
	    $(DESTDIR)$(LIBDIR)/libmessenger.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libmessenger.so.$(VERSION)
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/messenger.pc $(DESTDIR)$(BINDIR)/msgr \
	    $(DESTDIR)$(MANDIR)/man1/msgr.1

# Installs into a temporary DESTDIR, builds a program there through pkg-config (shared and
# static) and runs both; checks the exported symbols against the headers; uninstalls.
package-test: lib $(BUILD)/bin/msgr
	@sh tests/package_test.sh $(BUILD)

clean:
	rm -rf build
