# Skillscope build. `make` builds ./skillscope; `make run` installs missing Debian packages, builds and
# starts the server; `make test` runs every test (unit, ASan/UBSan unit, fuzz corpora, integration,
# interop). Dependencies come from Debian packages through pkg-config.

VERSION  := $(shell git describe --always --dirty 2>/dev/null || echo dev)
PKGS     := libevent libevent_pthreads zlib libzstd jansson libxxhash libpcre2-8 yaml-0.1 snappy \
            libnghttp2 expat
CC       ?= cc
WARN     := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
            -Wformat=2 -Wno-format-nonliteral
DEFS     := -D_GNU_SOURCE
OPT      ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS_ALL = $(WARN) $(DEFS) $(OPT) -ffp-contract=off -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm $(LDLIBS)

LIB_SRC  := $(sort $(filter-out src/main.c,$(wildcard src/*/*.c)))
UNIT_SRC := $(sort $(wildcard tests/unit/*.c))
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))

BUILD    ?= build/release
BIN      ?= skillscope
ASAN     ?= build/asan
# The UI's files (ui/, dashboards/, uPlot from npm) become one generated C source, so the binary
# serves them with nothing beside it (scripts/embed-assets.py, src/web/assets.h).
UPLOT    := ui/node_modules/uplot/dist/uPlot.iife.min.js
UI_FILES := $(shell find ui dashboards -type f -not -path '*/node_modules/*' 2>/dev/null)
ASSETS_C := $(BUILD)/gen/assets.c
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/assets.o
ALIB_OBJ := $(LIB_SRC:%.c=$(ASAN)/%.o) $(ASAN)/gen/assets.o
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

.PHONY: all run test unit asan fuzz-replay fuzz integ interop format format-check deps clean check-deps bench

all: $(BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The version is compiled into base/version.o alone, which is rebuilt when it changes: each build
# dir keeps the last version in version.txt, rewritten only when git describe says otherwise.
$(foreach d,$(BUILD) $(ASAN),$(shell mkdir -p $(d) && (echo '$(VERSION)' | cmp -s - $(d)/version.txt || echo '$(VERSION)' > $(d)/version.txt)))
$(BUILD)/src/base/version.o $(ASAN)/src/base/version.o: CFLAGS += -DSKILLSCOPE_VERSION=\"$(VERSION)\"
$(BUILD)/src/base/version.o: $(BUILD)/version.txt
$(ASAN)/src/base/version.o: $(ASAN)/version.txt

$(ASAN)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SAN) -DEXPENSIVE_CHECKS -MMD -MP -c $< -o $@

$(UPLOT): ui/package-lock.json
	cd ui && npm ci --no-audit --no-fund --loglevel=error
	@touch $@

$(ASSETS_C): $(UI_FILES) $(UPLOT) scripts/embed-assets.py
	python3 scripts/embed-assets.py $@ /ui=ui /dashboards=dashboards \
	  /ui/vendor/uPlot.min.js=$(UPLOT) /ui/vendor/uPlot.min.css=ui/node_modules/uplot/dist/uPlot.min.css

$(BUILD)/gen/assets.o: $(ASSETS_C)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(ASAN)/gen/assets.o: $(ASSETS_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -O1 $(SAN) -c $< -o $@

$(BIN): $(LIB_OBJ) $(BUILD)/src/main.o
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/test_unit: $(LIB_OBJ) $(UNIT_SRC:%.c=$(BUILD)/%.o)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

$(ASAN)/skillscope: $(ALIB_OBJ) $(ASAN)/src/main.o
	$(CC) $(CFLAGS_ALL) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(ASAN)/test_unit: $(ALIB_OBJ) $(UNIT_SRC:%.c=$(ASAN)/%.o)
	$(CC) $(CFLAGS_ALL) $(SAN) -o $@ $^ $(LDLIBS_ALL)

# Each fuzz target linked with a replay driver (runs the committed corpus, no libFuzzer needed).
$(ASAN)/fuzz/%: $(ASAN)/fuzz/%.o $(ASAN)/fuzz/replay.o $(ALIB_OBJ)
	$(CC) $(CFLAGS_ALL) $(SAN) -o $@ $^ $(LDLIBS_ALL)

deps:
	@scripts/install-deps.sh

NPROC    := $(shell nproc 2>/dev/null || echo 2)

run: deps
	@$(MAKE) --no-print-directory -j$(NPROC) skillscope
	./skillscope serve --data-dir ./skillscope-data

unit: $(BUILD)/test_unit
	$(BUILD)/test_unit

asan: $(ASAN)/test_unit $(ASAN)/skillscope
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $(ASAN)/test_unit

fuzz-replay: $(FUZZ_SRC:fuzz/%.c=$(ASAN)/fuzz/%)
	@scripts/fuzz-replay.sh $(ASAN)/fuzz

# Coverage-guided fuzzing with clang's libFuzzer: make fuzz TARGET=fuzz_otlp_pb [SECS=60]
fuzz:
	@scripts/fuzz-run.sh $(TARGET) $(SECS)

integ: skillscope
	tests/integ/run.sh

interop: skillscope
	tests/interop/run.sh

check-deps:
	@scripts/check-includes.sh

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) skillscope $(BUILD)/test_unit
	@scripts/test-all.sh

$(BUILD)/bench/otlp_load: $(BUILD)/bench/otlp_load.o $(LIB_OBJ)
	$(CC) $(CFLAGS_ALL) -o $@ $^ $(LDLIBS_ALL)

bench: skillscope $(BUILD)/bench/otlp_load
	bench/run.sh

FORMAT_FILES = $(wildcard src/*.c src/*/*.c src/*/*.h tests/unit/*.c tests/unit/*.h tests/promql/*.c tests/promql/*.h fuzz/*.c bench/*.c)
format:
	clang-format -i $(FORMAT_FILES)

format-check:
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: ok"

format-check-counted:
	@if clang-format --dry-run --Werror $(FORMAT_FILES); then echo "format-check: 1 passed, 0 failed"; \
	 else echo "format-check: 0 passed, 1 failed"; exit 1; fi

clean:
	rm -rf build skillscope

-include $(LIB_OBJ:.o=.d) $(ALIB_OBJ:.o=.d) $(BUILD)/src/main.d $(ASAN)/src/main.d \
  $(UNIT_SRC:%.c=$(BUILD)/%.d) $(UNIT_SRC:%.c=$(ASAN)/%.d) $(FUZZ_SRC:%.c=$(ASAN)/%.d) $(BUILD)/bench/otlp_load.d
