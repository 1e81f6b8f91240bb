// Validates custom resources (JSON files, one object each) against the
// schemas of their CRDs, as compiled from the projects' Go API types by the
// npm packages @kubernetes-models/prometheus-operator (ServiceMonitor,
// PrometheusRule) and @kubernetes-models/gateway-api (HTTPRoute). They check
// types, required fields, enums and patterns (durations, for example); they
// do not reject unknown fields.
//
// Usage: node validate-crs.mjs NODE_MODULES_DIR FILE.json...
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...files] = process.argv.slice(2);
const groups = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/index.js",
  "gateway.networking.k8s.io/v1": "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/index.js",
};
const loaded = {};
let failed = 0;
for (const file of files) {
  const obj = JSON.parse(readFileSync(file, "utf8"));
  const entry = groups[obj.apiVersion];
  if (!entry) {
    console.error(`${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
    failed++;
    continue;
  }
  loaded[entry] ??= await import(pathToFileURL(join(modules, entry)).href);
  const Model = loaded[entry][obj.kind];
  if (!Model) {
    console.error(`${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
  } catch (e) {
    console.error(`${file}: ${obj.kind}/${obj.metadata?.name}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
