#!/usr/bin/env bash
# Coverage-guided fuzzing of one target with clang's libFuzzer, growing its committed corpus.
# Usage: scripts/fuzz-run.sh fuzz_otlp_pb [seconds]
set -euo pipefail
t=${1:?usage: fuzz-run.sh TARGET [SECONDS]}; secs=${2:-60}
out=build/libfuzzer; mkdir -p "$out"
pkgs="libevent libevent_pthreads zlib libzstd jansson libxxhash libpcre2-8 yaml-0.1 snappy libnghttp2 expat"
make -s build/release/gen/assets.c   # the embedded UI, which src/web links against
srcs="$(ls src/*/*.c | grep -v '^src/main.c$') build/release/gen/assets.c"
# shellcheck disable=SC2046,SC2086 # word splitting of the flag and file lists is intended
clang -std=c11 -D_GNU_SOURCE -DSKILLSCOPE_VERSION=\"fuzz\" -O1 -g -Isrc $(pkg-config --cflags $pkgs) \
  -fsanitize=fuzzer,address,undefined -o "$out/$t" "fuzz/$t.c" $srcs \
  $(pkg-config --libs $pkgs) -lpthread -lm
mkdir -p "fuzz/corpus/${t#fuzz_}"
"$out/$t" -max_total_time="$secs" "fuzz/corpus/${t#fuzz_}"
