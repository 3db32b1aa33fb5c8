#!/usr/bin/env bash
# `make fuzz`: run every cargo-fuzz (libFuzzer) target of fuzz/ for FUZZ_SECONDS each
# (default 180), starting from the checked-in corpus fuzz/corpus/<target>/.
#
#   FUZZ_SECONDS=600 make fuzz          longer runs
#   FUZZ_TARGETS="scope_list" make fuzz one target
#   FUZZ_MERGE=1 make fuzz              afterwards, add what the runs found that reaches new
#                                       coverage to the checked-in corpus (`cargo fuzz cmin`,
#                                       then libFuzzer's -set_cover_merge=1)
#
# New inputs go to fuzz/target/new-corpus/<target>/ (not checked in); a crash stops the
# run, leaves its input in fuzz/artifacts/<target>/ and fails the script. Reproduce it with
# `cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>`; once fixed, copy the
# file into fuzz/corpus/<target>/ so `make test` (tests/e2e/fuzz_corpus.rs) replays it.
#
# Needs the nightly toolchain (installed with rustup when missing) and cargo-fuzz
# (installed with `cargo install cargo-fuzz --locked` when missing). The sanitizer is off
# by default (FUZZ_SANITIZER=address to turn it on): our crates forbid `unsafe`, and
# libFuzzer's coverage plus debug assertions (overflow checks) are what find bugs here.
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
seconds=${FUZZ_SECONDS:-180}
sanitizer=${FUZZ_SANITIZER:-none}
targets=${FUZZ_TARGETS:-"normalize_path route_match scope_list cookie_header jwt_header"}

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

export CARGO_INCREMENTAL=0
cargo +nightly fuzz build -s "$sanitizer"
for t in $targets; do
  mkdir -p "target/new-corpus/$t"
  echo "== $t: ${seconds}s"
  cargo +nightly fuzz run -s "$sanitizer" "$t" "target/new-corpus/$t" "corpus/$t" -- \
    -max_total_time="$seconds" -print_final_stats=1
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    # Minimise what this run found, then add to the checked-in corpus only the inputs
    # that reach coverage it lacks (the hand-made seed-* files stay as they are).
    cargo +nightly fuzz cmin -s "$sanitizer" "$t" "target/new-corpus/$t"
    cargo +nightly fuzz run -s "$sanitizer" "$t" "corpus/$t" "target/new-corpus/$t" -- -set_cover_merge=1
  fi
done
echo "fuzz: ${targets// /, }: no crash in ${seconds}s each"
