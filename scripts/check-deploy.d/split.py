"""Splits a rendered manifest stream into one file per object: built-in
kinds as YAML under DIR/core (for kubernetes-validate), custom resources as
JSON under DIR/cr (for validate-crs.mjs). Prints the kinds, in order, one
line: KIND[@GROUP] ..."""
import json
import os
import sys

import yaml

# API groups of Kubernetes itself; anything else is a custom resource.
BUILT_IN = {
    "", "apps", "autoscaling", "batch", "policy", "networking.k8s.io",
    "rbac.authorization.k8s.io", "storage.k8s.io", "scheduling.k8s.io",
    "coordination.k8s.io", "discovery.k8s.io", "node.k8s.io",
    "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "certificates.k8s.io", "events.k8s.io", "flowcontrol.apiserver.k8s.io",
}

src, out = sys.argv[1], sys.argv[2]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
for sub in ("core", "cr"):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
kinds = []
for i, d in enumerate(docs):
    group = d["apiVersion"].rpartition("/")[0]
    custom = group not in BUILT_IN
    name = f"{i:02d}-{d['kind']}"
    if custom:
        with open(os.path.join(out, "cr", name + ".json"), "w") as f:
            json.dump(d, f)
        kinds.append(f"{d['kind']}@{group}")
    else:
        with open(os.path.join(out, "core", name + ".yaml"), "w") as f:
            yaml.safe_dump(d, f)
        kinds.append(d["kind"])
print(" ".join(kinds))
