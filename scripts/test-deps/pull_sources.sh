#!/usr/bin/env bash
# Peers of the Prometheus / VictoriaMetrics and HTTP JSON pull-source tests
# (engine/server/tests/pull_sources*.rs): Debian's prometheus and victoria-metrics (the
# `victoria-metrics` single-node binary; tests start it in a temp dir on a free port), and
# python3 for the paginated JSON API the tests serve. Nothing here starts a service.
# Idempotent: installs only what is missing.
set -euo pipefail
need=()
command -v prometheus >/dev/null 2>&1 || need+=(prometheus)
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need+=(victoria-metrics)
command -v python3 >/dev/null 2>&1 || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  for pkg in "${need[@]}"; do
    echo "installing test peer: $pkg"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  done
fi
# The Debian package enables and starts a victoria-metrics service on :8428; the tests do not
# use it (they start their own), so it is stopped and disabled to keep the port and CPU free.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet victoria-metrics 2>/dev/null; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO systemctl disable --now victoria-metrics >/dev/null 2>&1 || true
fi
