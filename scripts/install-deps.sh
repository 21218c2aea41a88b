#!/usr/bin/env bash
# Installs the Debian packages Skillscope needs to build and test, only those missing.
# Quiet when everything is present; uses sudo when not root. Idempotent.
set -euo pipefail

PKGS=(
  build-essential pkg-config clang clang-format
  libevent-dev zlib1g-dev libzstd-dev libjansson-dev libxxhash-dev libpcre2-dev libyaml-dev
  libsnappy-dev libnghttp2-dev libexpat1-dev
  nodejs npm curl ca-certificates python3
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    # node from another source (e.g. nodesource) provides npm itself
    if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
    if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1
  fi
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
