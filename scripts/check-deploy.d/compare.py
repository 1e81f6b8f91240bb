"""Compares a Helm rendering with a kustomize build of the same setup,
object by object, on every field that matters to the cluster.

Usage: compare.py HELM.yaml KUSTOMIZE.yaml

Set aside as insignificant: the labels each tool adds for its own
bookkeeping (Helm's instance/version/managed-by/chart, kustomize's part-of;
selectors included, since each tool selects on its own set consistently),
the hash suffix of kustomize's generated ConfigMap name and the Helm pod
annotation that plays its role (checksum/config), and the order of env,
volumes and volumeMounts entries. Everything else must be equal.
Exit 1 with the differences, listed by object and field path.
"""
import re
import sys

import yaml

BOOKKEEPING_LABELS = {
    "app.kubernetes.io/instance",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/version",
    "app.kubernetes.io/part-of",
    "helm.sh/chart",
}
GENERATED = re.compile(r"^(popbill-bridge-config)-[a-z0-9]{10}$")
SORT_BY_NAME = {"env", "volumes", "volumeMounts"}


def normalize(value, key=None):
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if key in ("labels", "matchLabels", "selector") and k in BOOKKEEPING_LABELS:
                continue
            if key == "annotations" and k == "checksum/config":
                continue
            v = normalize(v, k)
            if k == "annotations" and not v:
                continue
            out[k] = v
        return out
    if isinstance(value, list):
        items = [normalize(v, key) for v in value]
        if key in SORT_BY_NAME:
            items.sort(key=lambda x: x.get("name", ""))
        return items
    if isinstance(value, str):
        return GENERATED.sub(r"\1", value)
    return value


def objects(path):
    out = {}
    for doc in yaml.safe_load_all(open(path)):
        if not doc:
            continue
        doc = normalize(doc)
        key = (doc["kind"], doc["metadata"]["name"])
        if key in out:
            sys.exit(f"{path}: {key[0]}/{key[1]} twice")
        out[key] = doc
    return out


def short(value):
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def diff(a, b, path, found):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a:
                found.append(f"{path}.{k}: only in kustomize: {short(b[k])}")
            elif k not in b:
                found.append(f"{path}.{k}: only in helm: {short(a[k])}")
            else:
                diff(a[k], b[k], f"{path}.{k}", found)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff(x, y, f"{path}[{i}]", found)
    elif a != b:
        found.append(f"{path}: helm {short(a)} != kustomize {short(b)}")


helm, kust = objects(sys.argv[1]), objects(sys.argv[2])
found = []
for key in sorted(set(helm) | set(kust)):
    name = f"{key[0]}/{key[1]}"
    if key not in kust:
        found.append(f"{name}: only in helm")
    elif key not in helm:
        found.append(f"{name}: only in kustomize")
    else:
        diff(helm[key], kust[key], name, found)
for line in found:
    print("  " + line, file=sys.stderr)
if not found:
    print(f"{len(helm)} objects equal: {' '.join(sorted(k for k, _ in helm))}")
sys.exit(1 if found else 0)
