#!/bin/sh
# run.sh - builds the PromQL conformance runner (tests/promql/runner.c) and runs it over the
# upstream promqltest files. The library objects are built through the Makefile's own pattern
# rules (same flags, incremental); the runner is linked from them into $OUT/runner.
#
#   tests/promql/run.sh [runner args...]     e.g. -v, --no-strict, path/to/one.test
#   ASAN=1 tests/promql/run.sh               address+undefined sanitizer build
#   OUT=build/x tests/promql/run.sh          another build directory (default: the Makefile's build/release or build/asan, whose objects are reused)
#
# Exits non-zero when an eval fails. Run from anywhere; paths are relative to the repo root.
set -eu
cd "$(dirname "$0")/../.."

for f in src/query/promql_parse.c src/query/promql_eval.c; do
    if [ ! -f "$f" ]; then
        echo "run.sh: $f does not exist yet: the PromQL engine is not built, nothing to run" >&2
        exit 1
    fi
done

PKGS="libevent libevent_pthreads zlib libzstd jansson libxxhash libpcre2-8 yaml-0.1 snappy libnghttp2 expat"
WARN="-std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
-Wformat=2 -Wno-format-nonliteral"
CFLAGS="$WARN -D_GNU_SOURCE -O2 -g -ffp-contract=off -Isrc $(pkg-config --cflags $PKGS)"
LIBS="$(pkg-config --libs $PKGS) -lpthread -lm"
SRCS=$(ls src/*/*.c | grep -v '^src/main\.c$')

if [ "${ASAN:-}" = 1 ]; then
    OUT=${OUT:-build/asan}
    SAN="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"
    OBJS="$(echo "$SRCS" | sed "s|^|$OUT/|;s|\.c\$|.o|") $OUT/gen/assets.o"
    make -s -j"$(nproc 2>/dev/null || echo 2)" BUILD="$OUT.unused" ASAN="$OUT" $OBJS
else
    OUT=${OUT:-build/release}
    SAN=""
    OBJS="$(echo "$SRCS" | sed "s|^|$OUT/|;s|\.c\$|.o|") $OUT/gen/assets.o"
    make -s -j"$(nproc 2>/dev/null || echo 2)" BUILD="$OUT" $OBJS
fi

# shellcheck disable=SC2086
cc $CFLAGS $SAN -o "$OUT/runner" tests/promql/runner.c tests/promql/pqt_syntax.c $OBJS $LIBS
"$OUT/runner" --self-test >/dev/null || { "$OUT/runner" --self-test; exit 1; }
exec "$OUT/runner" "$@"
