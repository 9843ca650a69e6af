#!/usr/bin/env bash
# Starts the platform on localhost with embedded defaults, no configuration needed:
#   taosd        127.0.0.1:6030  (data under /var/lib/taos, or ~/.local/share/taos when not writable)
#   taosadapter  127.0.0.1:6041  (REST /rest/sql, WebSocket /ws, InfluxDB/OpenTSDB writes)
# Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p taosd -p taosc -p taosadapter
BIN="$CARGO_TARGET_DIR/release"
"$BIN/taosd" "$@" &
TAOSD=$!
trap 'kill $TAOSD $ADAPTER 2>/dev/null; wait' INT TERM EXIT
# The adapter connects lazily, so it may start while taosd opens its vnodes.
"$BIN/taosadapter" &
ADAPTER=$!
echo "taosd (pid $TAOSD) on 127.0.0.1:6030, taosadapter (pid $ADAPTER) on 127.0.0.1:6041"
echo "CLI:  $BIN/taos -h 127.0.0.1 -P 6030"
echo "REST: curl -u root:taosdata -d 'show databases' http://127.0.0.1:6041/rest/sql"
wait -n $TAOSD $ADAPTER
