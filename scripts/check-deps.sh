#!/usr/bin/env bash
# The dependency graph's licences, banned crates and sources, by cargo-deny
# with deny.toml: `cargo deny check licenses bans sources`. No advisory
# database is involved, so nothing is downloaded but crates missing from the
# local registry cache (none after a build); with them cached it runs
# --offline.
#
# cargo-deny is installed into ~/.cargo/bin on first use (from crates.io,
# compiled: several minutes on two cores), then reused.
#
# Usage: scripts/check-deps.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
if ! command -v cargo-deny >/dev/null 2>&1 ||
  [ "$(cargo-deny --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
  echo "check-deps: installing cargo-deny $version (crates.io) into ~/.cargo/bin" >&2
  cargo install --locked --quiet cargo-deny --version "$version" >&2
fi
offline=()
cargo metadata --offline --locked --format-version 1 >/dev/null 2>&1 && offline=(--offline)
cargo deny "${offline[@]}" --locked check --hide-inclusion-graph licenses bans sources
echo "check-deps: ok   cargo-deny $version: licences, bans and sources of Cargo.lock (deny.toml)"
