#!/usr/bin/env bash
# Installs what the demonstration and the tests need, when it is missing. Safe to re-run.
set -euo pipefail

need_apt=()
command -v qemu-io >/dev/null 2>&1 || need_apt+=(qemu-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
  else
    echo "install-deps: missing ${need_apt[*]} (run as root, or install them)" >&2
  fi
fi
