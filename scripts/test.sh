#!/usr/bin/env bash
# Runs every test of the repository on a fresh machine: installs what the tests need, builds
# with a target dir cached outside the clone, runs unit, integration and SQL case tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

echo "== toolchain: $(cargo --version)"

# Debian tools the tests drive: curl (REST error paths), promtool (metrics lint), mosquitto (the
# MQTT broker of the edge-link tests), iproute2 and nftables (the two-host network-namespace test).
need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v ip >/dev/null 2>&1 || need_apt+=(iproute2)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need_apt+=(nftables)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "== installing ${need_apt[*]}"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  ($SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}") >/dev/null
fi

# Real client libraries (taospy's taosrest, influxdb, @tdengine/rest) in caches outside the clone.
eval "$(bash taosadapter/tests/setup_peers.sh | grep '^export ')"

# Integration tests spawn the real binaries (taosd, taosadapter): build them all first.
cargo build --workspace --bins
status=0
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final || status=$?
else
  cargo test --workspace --no-fail-fast || status=$?
fi

# The official Rust `taos` client (old rustls/ring stack) lives in its own workspace so it never
# reaches a server's dependency tree; it drives the real taosd + taosadapter built above.
echo "== taos crate (official client) against taosadapter"
(cd taosadapter/ws-tests && TAOS_BIN_DIR="$CARGO_TARGET_DIR/debug" cargo test --no-fail-fast) || status=$?
exit $status
