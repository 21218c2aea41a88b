#!/bin/sh
# run.sh - builds the LogQL conformance runner (tests/logql/runner.c) and runs it over Loki's
# logqltest corpus (../shared/specs/loki/logqltest). The library objects come from the Makefile's
# own pattern rules (same flags, incremental); the runner is linked from them into $OUT/logql-runner.
#
#   tests/logql/run.sh [runner args...]     e.g. -v, path/to/one.logqltest
#   ASAN=1 tests/logql/run.sh               address+undefined sanitizer build
#   OUT=build/x tests/logql/run.sh          another build directory (default build/release or build/asan)
#
# Exits non-zero when an eval fails. Run from anywhere; paths are relative to the repo root.
set -eu
cd "$(dirname "$0")/../.."

PKGS="libevent libevent_pthreads zlib libzstd jansson libxxhash libpcre2-8 yaml-0.1 snappy libnghttp2 expat"
WARN="-std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
-Wformat=2 -Wno-format-nonliteral"
CFLAGS="$WARN -D_GNU_SOURCE -O2 -g -ffp-contract=off -Isrc $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
SRCS=$(ls src/*/*.c | grep -v '^src/main\.c$')

if [ "${ASAN:-}" = 1 ]; then
    OUT=${OUT:-build/asan}
    SAN="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    OBJS=$(echo "$SRCS" | sed "s|^|$OUT/|;s|\.c\$|.o|")
    if grep -q 'gen/assets.o' Makefile; then OBJS="$OBJS $OUT/gen/assets.o"; fi
    make -s -j"$(nproc 2>/dev/null || echo 2)" BUILD="$OUT.unused" ASAN="$OUT" $OBJS
else
    OUT=${OUT:-build/release}
    SAN=""
    OBJS=$(echo "$SRCS" | sed "s|^|$OUT/|;s|\.c\$|.o|")
    if grep -q 'gen/assets.o' Makefile; then OBJS="$OBJS $OUT/gen/assets.o"; fi
    make -s -j"$(nproc 2>/dev/null || echo 2)" BUILD="$OUT" $OBJS
fi

# shellcheck disable=SC2086
cc $CFLAGS $SAN -o "$OUT/logql-runner" tests/logql/runner.c tests/promql/pqt_syntax.c $OBJS $LIBS
exec "$OUT/logql-runner" "$@"
