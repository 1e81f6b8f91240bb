#!/usr/bin/env bash
# Fuzzes delivery parsing and routing with cargo-fuzz (libFuzzer) for a
# bounded time. Not part of CI's default path: run it by hand or nightly.
#
# Usage: scripts/fuzz.sh [seconds]     (default 60; or FUZZ_SECONDS)
# Needs the nightly toolchain (rustup toolchain install nightly); installs
# cargo-fuzz from crates.io on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-${FUZZ_SECONDS:-60}}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io (first run only)" >&2
  cargo install cargo-fuzz --locked >&2
fi

# Seed the corpus with the project's sample deliveries (headers joined by
# NUL, as the target reads them).
corpus=fuzz/corpus/delivery
mkdir -p "$corpus"
python3 - "$corpus" <<'PY'
import hashlib, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in ["src/commands/samples/deliveries.jsonl", "tests/fixtures/bad-deliveries.jsonl"]:
    for line in open(f, encoding="utf-8"):
        if not line.strip():
            continue
        s = json.loads(line)
        h = {k.lower(): v for k, v in s["headers"].items()}
        parts = [h.get(n, "") for n in ["pb-webhook-type", "pb-webhook-mid", "pb-webhook-corpnum", "pb-webhook-eventtype"]]
        data = b"\0".join(p.encode() for p in parts) + b"\0" + s["body"].encode()
        (out / hashlib.sha1(data).hexdigest()).write_bytes(data)
PY

# Inputs that once failed stay in the corpus.
cp fuzz/regressions/* "$corpus"/ 2>/dev/null || true

echo "fuzz.sh: fuzzing for ${seconds}s" >&2
cargo +nightly fuzz run delivery "$corpus" -- -max_total_time="$seconds" -max_len=65536
