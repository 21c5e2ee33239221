#!/usr/bin/env bash
# The syslog peer of engine/server/tests/syslog_ingest.rs: util-linux's `logger` (RFC 5424/3164
# over UDP, TCP and octet-counted TCP). Normally present (util-linux, or bsdutils on Debian);
# installed only when missing. Idempotent, one line per install.
set -euo pipefail
if ! command -v logger >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing test peer: bsdutils (logger)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends bsdutils >/dev/null
fi
