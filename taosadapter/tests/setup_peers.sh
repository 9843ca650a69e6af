#!/usr/bin/env bash
# Installs the real client libraries the taosadapter integration tests drive, idempotently:
#   - Python venv at ${TAOS_TEST_VENV:-$HOME/.cache/taos-venv} with taospy (taosrest), taos-ws-py
#     (taosws, the WebSocket connector), influxdb, paho-mqtt (edge-link publishers) and asyncua
#     (the OPC-UA server the taosx OPC-UA source tests collect from);
#   - npm prefix at ${TAOS_TEST_NODE:-$HOME/.cache/taos-node} with @tdengine/rest and node-opcua
#     (the OPC-UA server of deploy/bench/opcua/server.js); the tests use $TAOS_TEST_NODE_MODULES,
#     default $HOME/.cache/taos-node/node_modules.
# Fast when already installed (import/require checks only). Fails with a clear message when the
# package registries cannot be reached.
set -euo pipefail

VENV="${TAOS_TEST_VENV:-$HOME/.cache/taos-venv}"
NODE_DIR="${TAOS_TEST_NODE:-$HOME/.cache/taos-node}"

fail() { echo "setup_peers: $*" >&2; exit 1; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import taosrest, influxdb, taosws, paho.mqtt, asyncua' >/dev/null 2>&1; then
  echo "setup_peers: python peers present in $VENV"
else
  command -v python3 >/dev/null || fail "python3 not found"
  echo "setup_peers: creating $VENV (pip install taospy taos-ws-py influxdb paho-mqtt asyncua)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "cannot create venv $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check taospy taos-ws-py influxdb paho-mqtt asyncua \
    || fail "pip install taospy taos-ws-py influxdb paho-mqtt asyncua failed (offline? set TAOS_SKIP_PEERS=1 to skip peer tests)"
  "$VENV/bin/python" -c 'import taosrest, influxdb, taosws, paho.mqtt, asyncua' || fail "taosrest/influxdb/taosws/paho/asyncua not importable after install"
fi

if [ -f "$NODE_DIR/node_modules/@tdengine/rest/package.json" ] && [ -f "$NODE_DIR/node_modules/node-opcua/package.json" ]; then
  echo "setup_peers: node peers present in $NODE_DIR"
else
  command -v npm >/dev/null || fail "npm not found"
  echo "setup_peers: npm install @tdengine/rest node-opcua into $NODE_DIR"
  mkdir -p "$NODE_DIR"
  [ -f "$NODE_DIR/package.json" ] || echo '{"name":"taos-test-peers","private":true}' > "$NODE_DIR/package.json"
  (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund @tdengine/rest node-opcua) \
    || fail "npm install @tdengine/rest node-opcua failed (offline? set TAOS_SKIP_PEERS=1 to skip peer tests)"
fi

echo "export TAOS_TEST_VENV=$VENV"
echo "export TAOS_TEST_NODE_MODULES=$NODE_DIR/node_modules"
