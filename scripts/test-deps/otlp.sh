#!/usr/bin/env bash
# OTLP ingest tests (engine/server/tests/otlp_ingest.rs): the OpenTelemetry Python SDK and its
# OTLP exporters (HTTP/protobuf and gRPC) from PyPI. Idempotent: installs only what is missing.
# pip first; on an externally managed Python (PEP 668) retry with --break-system-packages.
set -euo pipefail
PKGS="opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc"
if ! python3 -c "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc" >/dev/null 2>&1; then
  echo "installing test peer: opentelemetry-sdk + OTLP exporters (http, grpc)"
  # shellcheck disable=SC2086
  python3 -m pip install --quiet $PKGS >/dev/null 2>&1 \
    || python3 -m pip install --quiet --break-system-packages $PKGS >/dev/null
fi
