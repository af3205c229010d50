#!/usr/bin/env bash
# One-time setup on a fresh machine: system packages for the filesystem suites
# (as root), npm packages, and the native + TypeScript build.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" = 0 ]; then
  need=()
  for pkg in xfsprogs btrfs-progs e2fsprogs util-linux qemu-utils openssh-server zstd; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if ((${#need[@]})); then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  modprobe loop 2>/dev/null || true
fi
npm ci --no-audit --no-fund
npm run build
