#!/usr/bin/env bash
# Starts the platform on localhost with embedded defaults: taosd on 127.0.0.1:6030 with its
# data under ~/.local/share/taos (or /var/lib/taos when writable). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release -p taosd -p taosc
BIN="$CARGO_TARGET_DIR/release"
echo "taosd starting; connect with: $BIN/taos -h 127.0.0.1 -P 6030"
exec "$BIN/taosd" "$@"
