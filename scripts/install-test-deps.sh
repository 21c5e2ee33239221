#!/usr/bin/env bash
# Installs the real peers the tests run against (Debian packages) when they are missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ -x /usr/bin/prometheus ] || need+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || need+=(prometheus-node-exporter)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian starts these as services on install; the tests start their own on free ports, so stop the
# packaged ones to free CPU (failures are fine: there may be no init system).
for svc in prometheus prometheus-node-exporter prometheus-alertmanager; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done
