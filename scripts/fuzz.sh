#!/usr/bin/env bash
# Fuzzes every parser of outside input (fuzz/fuzz_targets, see
# docs/TESTING.md) for a bounded time each, from the seeds kept in
# fuzz/corpus. Fails if any target finds a crash, a timeout or runs out of
# memory; the input that did it is left in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [seconds per target]    (default 20, as CI runs it)
#
# Targets run one per core; INCASSO_FUZZ_JOBS=1 leaves the other cores free.
#
# Stable Rust is enough: no sanitizer (`-s none`), so no -Z flag. What the
# runs discover goes to a temporary directory: the kept corpus changes only
# by hand (a minimized input that found a bug).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
cargo_fuzz_version=0.13.2

# The machine's default toolchain: stable is enough, and CI's machine has
# only the one toolchain (naming `+stable` would ask rustup for another).
cargo=(cargo)

if ! "${cargo[@]}" fuzz --version 2>/dev/null | grep -qF " $cargo_fuzz_version"; then
  echo "==> installing cargo-fuzz $cargo_fuzz_version"
  "${cargo[@]}" install cargo-fuzz --version "$cargo_fuzz_version" --locked --quiet
fi

# The workspace's target directory, not fuzz/target: one place to clean.
# -a keeps overflow checks on: an overflow is a bug to find, not to wrap.
build_flags=(-s none -a --target-dir target/fuzz)

echo "==> building the fuzz targets"
start=$SECONDS
"${cargo[@]}" fuzz build "${build_flags[@]}"
echo "    built in $((SECONDS - start))s"

work=$(mktemp -d "${TMPDIR:-/tmp}/incasso-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

# One target per core: each run is a single process, and the time is
# bounded per target whatever the machine's load.
jobs="${INCASSO_FUZZ_JOBS:-$(nproc)}"
fuzz_one() {
  local target=$1
  mkdir -p "$work/$target"
  # The first corpus directory receives new inputs, the second only seeds.
  if "${cargo[@]}" fuzz run "${build_flags[@]}" "$target" "$work/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
    >"$work/$target.log" 2>&1; then
    touch "$work/$target.ok"
  fi
}
targets=$("${cargo[@]}" fuzz list)
for target in $targets; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  fuzz_one "$target" &
done
wait

failed=()
for target in $targets; do
  if [ -e "$work/$target.ok" ]; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log" | tail -n 1)
    echo "    $target: ok (${runs:-?} runs in ${seconds}s)"
  else
    echo "    $target: FAILED"
    tail -n 60 "$work/$target.log" | sed 's/^/      /'
    failed+=("$target")
  fi
done

echo "    fuzzed in $((SECONDS - start))s, build included"
if [ ${#failed[@]} -gt 0 ]; then
  echo "==> fuzzing failed: ${failed[*]} (inputs in fuzz/artifacts/)"
  exit 1
fi
