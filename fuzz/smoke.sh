#!/usr/bin/env bash
# Fuzz smoke test for CI: builds every fuzz target and runs each for a short, bounded time
# (default 25 s; FUZZ_SECONDS overrides) from the committed corpus, one at a time. Exits
# non-zero when a target crashes (the input is left in fuzz/artifacts/TARGET/) or fails to
# build. New inputs go to a temporary directory, so the committed corpus is not touched.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); runs on the stable toolchain without a
# sanitizer (`-s none`); set FUZZ_SANITIZER=address to use ASan (sets RUSTC_BOOTSTRAP=1).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-25}"
sanitizer="${FUZZ_SANITIZER:-none}"
if [ "$sanitizer" != none ]; then
  export RUSTC_BOOTSTRAP=1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== cargo install cargo-fuzz"
  cargo install --locked cargo-fuzz
fi

targets=(parse_message stream_framer digest_header engine)
if [ $# -gt 0 ]; then
  targets=("$@")
fi

echo "== cargo fuzz build (sanitizer: $sanitizer)"
cargo fuzz build -s "$sanitizer"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t" "corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # -timeout: one input taking over 10 s counts as a hang; -rss_limit_mb bounds memory.
  # The regressions (every crash ever found) run first; a fixed seed makes a CI run
  # repeatable (FUZZ_SEED=0 lets libFuzzer pick one).
  dirs=("$scratch/$t" "corpus/$t")
  [ -d "regressions/$t" ] && dirs+=("regressions/$t")
  if cargo fuzz run -s "$sanitizer" "$t" "${dirs[@]}" -- \
      -seed="${FUZZ_SEED:-1}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"$scratch/$t.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done [0-9]+ runs' "$scratch/$t.log" || true
  else
    echo "!! $t failed:"
    tail -n 40 "$scratch/$t.log"
    failed+=("$t")
  fi
done

echo "fuzz smoke: ${seconds}s per target"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/<target>/)"
  exit 1
fi
