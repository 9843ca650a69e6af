# Shared by scripts/*.sh: build cache outside the clone, the mold linker that .cargo/config.toml
# asks for (installed when missing), and quiet, fast builds on a 2-core machine.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/taos-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
if ! command -v mold >/dev/null 2>&1; then
  echo "== installing mold (linker)"
  if [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq --no-install-recommends mold) >/dev/null 2>&1 || true
  else
    (sudo apt-get update -qq && sudo apt-get install -y -qq --no-install-recommends mold) >/dev/null 2>&1 || true
  fi
fi
if ! command -v mold >/dev/null 2>&1; then
  echo "== mold unavailable: using the default linker"
  export CARGO_BUILD_RUSTFLAGS=""
  export RUSTFLAGS=""
fi
