"""Writes the overlay variants scripts/check-deploy.sh builds, next to
deploy/overlays/example in a copy of deploy/ (so that their ../../ paths
resolve as the example's do):

  example-no-monitoring  the example without components/monitoring: what a
                         cluster without the Prometheus Operator applies
  example-gateway        the example plus components/gateway-api, with the
                         HTTPRoute's hostnames patched like the Ingress's host

Usage: variants.py COPY_OF_DEPLOY_DIR
"""
import os
import shutil
import sys

import yaml

deploy = sys.argv[1]
example = os.path.join(deploy, "overlays", "example")
kust = yaml.safe_load(open(os.path.join(example, "kustomization.yaml")))
monitoring = "../../components/monitoring"
if monitoring not in kust.get("components", []):
    sys.exit(f"{example}/kustomization.yaml does not list {monitoring}")


def write(name, k):
    out = os.path.join(deploy, "overlays", name)
    shutil.copytree(example, out)
    with open(os.path.join(out, "kustomization.yaml"), "w") as f:
        yaml.safe_dump(k, f)


no_monitoring = dict(kust, components=[c for c in kust["components"] if c != monitoring])
write("example-no-monitoring", no_monitoring)

host = None
for p in kust.get("patches", []):
    if p.get("target", {}).get("kind") == "Ingress":
        for op in yaml.safe_load(p["patch"]):
            if op["path"] == "/spec/rules/0/host":
                host = op["value"]
if not host:
    sys.exit(f"{example}/kustomization.yaml does not patch the Ingress's host")
gateway = dict(
    kust,
    components=kust["components"] + ["../../components/gateway-api"],
    patches=kust["patches"]
    + [
        {
            "target": {"kind": "HTTPRoute", "name": "popbill-bridge"},
            "patch": yaml.safe_dump([{"op": "replace", "path": "/spec/hostnames/0", "value": host}]),
        }
    ],
)
write("example-gateway", gateway)
