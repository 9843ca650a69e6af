#!/usr/bin/env bash
# Starts the platform on localhost with embedded defaults, no configuration needed:
#   taosd        127.0.0.1:6030  (data under /var/lib/taos, or ~/.local/share/taos when not writable)
#   taosadapter  127.0.0.1:6041  (REST /rest/sql, WebSocket /ws and /rest/tmq, InfluxDB/OpenTSDB writes)
#   taosx        :6050 HTTP API (tasks, agents), :6055 UDP/QUIC for taosx-agent
# Ctrl-C (or SIGTERM) stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p taosd -p taosc -p taosadapter -p taosx -p taosx-agent
BIN="$CARGO_TARGET_DIR/release"
"$BIN/taosd" "$@" &
TAOSD=$!
trap 'kill $TAOSD $ADAPTER $TAOSX 2>/dev/null; wait' INT TERM EXIT
# The adapter and taosx connect lazily, so they may start while taosd opens its vnodes.
"$BIN/taosadapter" &
ADAPTER=$!
"$BIN/taosx" serve &
TAOSX=$!
echo "taosd (pid $TAOSD) on 127.0.0.1:6030, taosadapter (pid $ADAPTER) on 127.0.0.1:6041, taosx (pid $TAOSX) on :6050 and udp :6055"
echo "CLI:    $BIN/taos -h 127.0.0.1 -P 6030"
echo "REST:   curl -u root:taosdata -d 'show databases' http://127.0.0.1:6041/rest/sql"
echo "taosx:  curl -d '{\"name\":\"site-1\"}' http://127.0.0.1:6050/api/v1/agents   (token for agent.toml)"
wait -n $TAOSD $ADAPTER $TAOSX
