#!/usr/bin/env bash
# Enforces the dependency rule of docs/ARCHITECTURE.md: a module folder may include only the folders
# listed for it below (and itself). Prints each violation and "N passed, N failed" over folders.
set -u
declare -A allow=(
  [base]="base"
  [proto]="base"
  [net]="base"
  [store]="base proto"
  [pipeline]="base proto store"
  [query]="base proto store net"
  [ingest]="base proto store pipeline net"
  [rules]="base proto store query net"
  [insights]="base proto store query net"
  [export]="base proto store net"
  [web]="base store query net"
  [cli]="base proto store pipeline query ingest rules insights export web net"
)
pass=0; fail=0
for dir in src/*/; do
  mod=$(basename "$dir")
  ok=1
  if [ -z "${allow[$mod]+x}" ]; then echo "check-includes: folder src/$mod has no rule"; fail=$((fail+1)); continue; fi
  while IFS= read -r line; do
    file=${line%%:*}
    inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")
    target=${inc%%/*}
    [ "$target" = "$inc" ] && continue   # local include without folder
    case " ${allow[$mod]} $mod " in
      *" $target "*) ;;
      *) echo "check-includes: $file includes $inc ($mod may use: ${allow[$mod]})"; ok=0;;
    esac
  done < <(grep -H '#include "' "$dir"*.c "$dir"*.h 2>/dev/null)
  # internal.h of a folder is private to it
  if grep -l "#include \"[a-z]*/internal.h\"" "$dir"*.[ch] 2>/dev/null | xargs -r grep -h '#include "[a-z]*/internal.h"' | grep -v "\"$mod/internal.h\"" >/dev/null; then
    echo "check-includes: src/$mod includes another folder's internal.h"; ok=0
  fi
  if [ $ok = 1 ]; then pass=$((pass+1)); else fail=$((fail+1)); fi
done
echo "check-includes: $pass passed, $fail failed"
[ $fail -eq 0 ]
