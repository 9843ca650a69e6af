#!/usr/bin/env bash
# Runs every test of the repository on a fresh machine: installs what the tests need, builds
# with a target dir cached outside the clone, runs unit, integration and SQL case tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

echo "== toolchain: $(cargo --version)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast --failure-output final
else
  cargo test --workspace --no-fail-fast
fi
