#!/usr/bin/env bash
# Validates the AsyncAPI documents of `popbill-bridge asyncapi` with the
# official parser (@asyncapi/parser from npm, the versions pinned by
# scripts/asyncapi/package-lock.json), failing on any error-severity
# diagnostic; also checks every message example against its schemas and
# every sample delivery (src/commands/samples/deliveries.jsonl) against its
# payload schema. Documents checked:
#   - docs/asyncapi.json, the committed document of the default
#     configuration (tests/it/asyncapi.rs keeps it equal to the generator's);
#   - the generator's output, JSON and YAML, for a configuration with an
#     override, an extra route, another CloudEvents source, no dead-letter
#     topic and topics.create = false.
#
# The parser is installed on first use into
# ${POPBILL_TOOLS_CACHE:-~/.cache/popbill-bridge}/asyncapi (npm ci; about
# 10 s), and again whenever the lock file changes.
#
# Usage: scripts/check-asyncapi.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${POPBILL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/popbill-bridge}/asyncapi"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! cmp -s scripts/asyncapi/package-lock.json "$cache/package-lock.json" ||
  [ ! -d "$cache/node_modules/@asyncapi/parser" ]; then
  echo "check-asyncapi: installing @asyncapi/parser (npm) into $cache" >&2
  mkdir -p "$cache"
  cp scripts/asyncapi/package.json scripts/asyncapi/package-lock.json "$cache/"
  npm ci --prefix "$cache" --no-audit --no-fund --silent >&2
fi

cargo build --quiet --locked --bin popbill-bridge
bin="${CARGO_TARGET_DIR:-target}/debug/popbill-bridge"
cat >"$work/custom.toml" <<'TOML'
[routes]
overrides = { "TAXINVOICE.STATE:Issue" = "invoices.issued", "FAX.STATE:RESULT" = "fax.results" }
[topics]
create = false
[cloudevents]
source = "urn:example:popbill"
type_prefix = "com.acme-corp.popbill"
[dead_letter]
enabled = false
TOML
env -u POPBILL_BRIDGE_CONFIG "$bin" asyncapi --config "$work/custom.toml" --output "$work/custom.json"
env -u POPBILL_BRIDGE_CONFIG "$bin" asyncapi --config "$work/custom.toml" --format yaml --output "$work/custom.yaml"

node scripts/asyncapi-validate.mjs "$cache/node_modules" --fixtures src/commands/samples/deliveries.jsonl \
  docs/asyncapi.json "$work/custom.json" "$work/custom.yaml"
echo "check-asyncapi: ok   docs/asyncapi.json and generated documents pass @asyncapi/parser"
