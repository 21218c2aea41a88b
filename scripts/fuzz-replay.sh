#!/usr/bin/env bash
# Replays every committed fuzz corpus through its target (ASan/UBSan build). Prints
# "N passed, N failed" over targets and exits non-zero if any input crashed or leaked.
set -u
dir=$1
pass=0; fail=0
for bin in "$dir"/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin")
  corpus="fuzz/corpus/${name#fuzz_}"
  if [ ! -d "$corpus" ]; then echo "fuzz-replay: no corpus for $name at $corpus"; fail=$((fail+1)); continue; fi
  if ASAN_OPTIONS=detect_leaks=1 "$bin" "$corpus" >/tmp/fuzz-replay.$$ 2>&1; then
    echo "ok   $name ($(ls "$corpus" | wc -l) inputs)"; pass=$((pass+1))
  else
    echo "FAIL $name"; tail -30 /tmp/fuzz-replay.$$; fail=$((fail+1))
  fi
done
rm -f /tmp/fuzz-replay.$$
echo "fuzz-replay: $pass passed, $fail failed"
[ $fail -eq 0 ]
