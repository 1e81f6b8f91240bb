#!/usr/bin/env python3
"""Turns a rendered manifest (kustomize or helm) into what `podman kube play`
runs here, changing only what a local test must, and saying each change:

- the image: the one scripts/image.sh built (no registry here);
- the brokers: the test broker on the host (host network), plain text, so
  the example overlay's SASL_SSL settings are dropped (its secured broker is
  tests/it/secured.rs's); the SASL password file it mounts is still read;
- the allow-list: 127.0.0.1/32 added beside what it names, so the test can
  post from the host;
- a Secret with the keys the Deployment mounts or reads (the manifests
  leave the Secret to the operator), with test credentials;
- credential files: podman 4.3's kube play writes a Secret's `data` into
  the mounted files still base64-encoded (and ignores `stringData`), so a
  Basic credential file can never hold its `user:password`. The Secret is
  still mounted where rendered (the test checks the mount); the bridge is
  given the same credentials by environment (`AUTH__BASIC`,
  `AUTH__API_KEYS`) instead of the `*_FILES` settings;
- what podman 4.3's kube play cannot take: a Secret volume without
  `optional` (it dereferences the missing value and panics: `optional:
  false` is set, which is Kubernetes' default), and container ports under
  host networking (refused: "PortMappings can only be used with Bridge or
  slirp4netns networking"; the ports are dropped, and the probes, which
  name them, get their numbers).

Everything else (args, env, ConfigMap and Secret mounts, securityContext,
probes) is played as rendered. Kinds `kube play` does not run (Service,
HPA, PDB, NetworkPolicy, Ingress, PrometheusRule, ServiceMonitor) are left
out and listed.

Usage: kube-play.py RENDERED.yaml IMAGE BROKERS > PLAY.yaml (notes on stderr)
"""
import base64
import sys

import yaml

PLAYED = {"Deployment", "ConfigMap", "Secret"}
SECRET = {"basic": "popbill:s3cret\n", "api-keys": "k-play\n", "sasl-password": "unused\n",
          "ca.crt": "unused\n"}


def main():
    rendered, image, brokers = sys.argv[1:4]
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    out, skipped, secret_names = [], [], set()
    for d in docs:
        kind = d.get("kind")
        if kind not in PLAYED:
            skipped.append(kind)
            continue
        if kind == "Deployment":
            spec = d["spec"]["template"]["spec"]
            for v in spec.get("volumes", []):
                if "secret" in v:
                    secret_names.add(v["secret"]["secretName"])
                    v["secret"].setdefault("optional", False)
            for c in spec["containers"]:
                c["image"] = image
                c["imagePullPolicy"] = "Never"
                ports = {p.get("name"): p["containerPort"] for p in c.pop("ports", [])}
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    get = c.get(probe, {}).get("httpGet")
                    if get and isinstance(get.get("port"), str):
                        get["port"] = ports[get["port"]]
                env = []
                for e in c.get("env", []):
                    ref = e.get("valueFrom", {}).get("secretKeyRef")
                    if ref:
                        secret_names.add(ref["name"])
                    name = e["name"]
                    if name.startswith("POPBILL_BRIDGE_KAFKA__PROPERTIES__S"):
                        continue  # SASL_SSL settings: the test broker is plain
                    # Kept: the password is read from the mounted Secret
                    # (base64 text here, unused by a plain broker).
                    if name == "POPBILL_BRIDGE_KAFKA__BROKERS":
                        e = {"name": name, "value": brokers}
                    if name == "POPBILL_BRIDGE_ACCESS__ALLOW":
                        e = {"name": name, "value": e["value"] + ",127.0.0.1/32"}
                    if name == "POPBILL_BRIDGE_AUTH__BASIC_FILES":
                        e = {"name": "POPBILL_BRIDGE_AUTH__BASIC", "value": SECRET["basic"].strip()}
                    if name == "POPBILL_BRIDGE_AUTH__API_KEY_FILES":
                        e = {"name": "POPBILL_BRIDGE_AUTH__API_KEYS", "value": SECRET["api-keys"].strip()}
                    env.append(e)
                if not any(e["name"] == "POPBILL_BRIDGE_KAFKA__BROKERS" for e in env):
                    env.append({"name": "POPBILL_BRIDGE_KAFKA__BROKERS", "value": brokers})
                # One broker: the topics it creates have one replica.
                env.append({"name": "POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR", "value": "1"})
                env.append({"name": "POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS", "value": "1"})
                c["env"] = env
        out.append(d)
    # Secrets first (podman 4.3 looks them up as it meets the volume),
    # with `data`, which it mounts (still encoded; see above).
    secrets = [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in SECRET.items()}}
               for name in sorted(secret_names)]
    out = secrets + out
    print(f"kube-play: not played (kube play runs none of them): {', '.join(sorted(set(skipped)))}",
          file=sys.stderr)
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)


main()
