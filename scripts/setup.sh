#!/usr/bin/env bash
# Installs what bookd builds and tests with (Debian 12), when missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      liburing-dev libjemalloc-dev libpq-dev libmsgpack-dev libxxhash-dev
      libssl-dev libhttp-parser-dev libjansson-dev postgresql tzdata
      curl wrk jq openssl clang-format python3
      libsystemd-dev systemd dpkg-dev libcurl4-openssl-dev python3-aiosmtpd python3-prometheus-client
      chromium chromium-driver python3-selenium)
missing=()
# node and npm (the TypeScript client's tests); a node from elsewhere that
# brings its own npm is kept
command -v npm >/dev/null || pkgs+=(nodejs npm)
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y "${missing[@]}"
fi
