// Validates AsyncAPI documents written by `popbill-bridge asyncapi` with
// the official parser (@asyncapi/parser: the specification's JSON Schema,
// the Kafka bindings' schemas, and its Spectral rules: references, channel
// and operation consistency, message examples against their schemas).
// Fails on any error-severity diagnostic; warnings are printed.
//
// Every message example's headers and payload are checked against the
// message's schemas (Ajv; the parser does not do that).
//
// With --fixtures FILE.jsonl it also checks every sample delivery's body
// against the payload schema of the messages of its webhook type (Ajv):
// the schemas must accept what POPBiLL really sends.
//
// Usage: node asyncapi-validate.mjs NODE_MODULES_DIR [--fixtures FILE] DOC.json|DOC.yaml...
// scripts/check-asyncapi.sh installs the modules and runs it.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const args = process.argv.slice(2);
const modules = resolve(args.shift() ?? "");
let fixtures = null;
const docs = [];
while (args.length) {
  const a = args.shift();
  if (a === "--fixtures") fixtures = args.shift();
  else docs.push(a);
}
if (!docs.length) {
  console.error("usage: node asyncapi-validate.mjs NODE_MODULES_DIR [--fixtures FILE] DOC...");
  process.exit(2);
}

const require = createRequire(join(modules, "index.js"));
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");
const Ajv = require("ajv");
const addFormats = require("ajv-formats");

const parser = new Parser();
const severity = (s) => Object.keys(DiagnosticSeverity).find((k) => DiagnosticSeverity[k] === s) ?? s;
let failed = 0;

for (const file of docs) {
  const text = readFileSync(file, "utf8");
  const { document, diagnostics } = await parser.parse(text, { source: resolve(file) });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of diagnostics) {
    const where = d.path?.length ? ` at /${d.path.join("/")}` : "";
    console.error(`${file}: ${severity(d.severity).toLowerCase()} [${d.code}]${where}: ${d.message}`);
  }
  if (!document || errors.length) {
    console.error(`${file}: FAIL (${errors.length} error(s))`);
    failed++;
    continue;
  }
  const channels = document.channels().length;
  const messages = document.allMessages().length;
  console.log(
    `${file}: ok (AsyncAPI ${document.version()}, ${channels} channels, ${messages} messages, ` +
      `${diagnostics.length - errors.length} non-error diagnostics)`,
  );

  const raw = file.endsWith(".json") ? JSON.parse(text) : require("js-yaml").load(text);
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  for (const [name, schema] of Object.entries(raw.components?.schemas ?? {})) {
    ajv.addSchema(schema, `#/components/schemas/${name}`);
  }
  failed += checkExamples(file, raw, ajv);
  if (fixtures) failed += checkFixtures(file, raw, ajv, fixtures);
}

// The parser does not check message examples against the message's
// schemas: every example's headers and payload, here.
function checkExamples(file, raw, ajv) {
  let bad = 0;
  let broken = 0;
  let checked = 0;
  const compile = (s) => (s.$ref ? ajv.getSchema(s.$ref) : ajv.compile(s));
  for (const [id, m] of Object.entries(raw.components?.messages ?? {})) {
    // Every schema compiles (patterns are valid ECMAScript regexes, ...).
    for (const part of ["headers", "payload"]) {
      try {
        if (m[part]) compile(m[part]);
      } catch (e) {
        broken++;
        console.error(`${file}: message ${id}: ${part} schema does not compile: ${e.message}`);
      }
    }
    for (const ex of m.examples ?? []) {
      for (const part of ["headers", "payload"]) {
        if (!(part in ex) || !m[part]) continue;
        checked++;
        const validate = compile(m[part]);
        if (!validate(ex[part])) {
          bad++;
          console.error(`${file}: example ${ex.name} of message ${id}: ${part}: ${ajv.errorsText(validate.errors)}`);
        }
      }
    }
  }
  console.log(`${file}: ${checked - bad}/${checked} example headers and payloads fit their schemas`);
  return bad || broken ? 1 : 0;
}

// Every sample body against the payload schema of its webhook type.
function checkFixtures(file, raw, ajv, fixturesFile) {
  const byType = new Map();
  for (const m of Object.values(raw.components?.messages ?? {})) {
    const type = m.headers?.properties?.["pb-webhook-type"]?.const;
    const ref = m.payload?.$ref;
    if (type && ref) byType.set(type, ref);
  }
  let bad = 0;
  let checked = 0;
  const lines = readFileSync(fixturesFile, "utf8").split("\n").filter((l) => l.trim());
  for (const line of lines) {
    const sample = JSON.parse(line);
    const type = Object.entries(sample.headers).find(([k]) => k.toLowerCase() === "pb-webhook-type")?.[1];
    const ref = byType.get(type);
    if (!ref) continue;
    const validate = ajv.getSchema(ref);
    checked++;
    if (!validate(JSON.parse(sample.body))) {
      bad++;
      console.error(`${file}: sample ${sample.name} does not fit ${ref}: ${ajv.errorsText(validate.errors)}`);
    }
  }
  console.log(`${file}: ${checked - bad}/${checked} sample bodies fit their payload schemas`);
  return bad ? 1 : 0;
}

process.exit(failed ? 1 : 0);
