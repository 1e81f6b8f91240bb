"""A popbill-bridge process on the real broker, for the real-broker test:
started from the binary cargo built, on topics of its own, fed the sample
deliveries and tests/vectors/inputs.jsonl over HTTP."""

import base64
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, List, Tuple

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inputs() -> List[Tuple[str, Dict[str, str], bytes]]:
    """(name, headers, body) of every delivery the vectors were made from."""
    out = []
    for path in (ROOT / "src/commands/samples/deliveries.jsonl", ROOT / "tests/vectors/inputs.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            v = json.loads(line)
            body = v["body"].encode("utf-8") if "body" in v else base64.b64decode(v["body_base64"])
            out.append((v["name"], v["headers"], body))
    return out


class Bridge:
    def __init__(self, binary: str, brokers: str, prefix: str):
        self.prefix = prefix
        self.webhook = f"127.0.0.1:{_free_port()}"
        self.admin = f"127.0.0.1:{_free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("POPBILL_") and k != "RUST_LOG"}
        env.update({
            "POPBILL_BRIDGE_TOPICS__PARTITIONS": "3",
            "POPBILL_BRIDGE_TOPICS__REPLICATION_FACTOR": "1",
            "POPBILL_BRIDGE_TOPICS__SETTINGS__MIN_INSYNC_REPLICAS": "1",
            "POPBILL_BRIDGE_ROUTES__TEMPLATE": prefix + ".{type}.{event}",
            "POPBILL_BRIDGE_ROUTES__FALLBACK": prefix + ".unrouted",
            "POPBILL_BRIDGE_DEAD_LETTER__TOPIC": prefix + ".deadletter",
            "POPBILL_BRIDGE_DEDUP__LEDGER_TOPIC": prefix + ".ledger",
            # A verified sender: malformed deliveries are dead-lettered.
            "POPBILL_BRIDGE_ACCESS__ALLOW": "127.0.0.1/32",
            "POPBILL_BRIDGE_SERVER__SHUTDOWN_DELAY": "0s",
            "POPBILL_BRIDGE_LOG__LEVEL": "warn",
        })
        self.process = subprocess.Popen(
            [binary, "--brokers", brokers, "--listen", self.webhook, "--admin-listen", self.admin],
            env=env, stdout=subprocess.DEVNULL)

    def wait_ready(self, within: float = 60) -> None:
        until = time.monotonic() + within
        last = ""
        while time.monotonic() < until:
            if self.process.poll() is not None:
                raise AssertionError(f"the bridge exited with {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError) as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError(f"the bridge was not ready in {within} s: {last}")

    def post(self, headers: Dict[str, str], body: bytes) -> int:
        """Posts as POPBiLL does, again on anything but 200 (twice at most)."""
        # http.client, not urllib: urllib adds User-Agent and a form
        # Content-Type, which the bridge would forward as the sender's.
        host, port = self.webhook.split(":")
        status = 0
        for _ in range(3):
            conn = http.client.HTTPConnection(host, int(port), timeout=30)
            try:
                conn.request("POST", "/popbill/webhook", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            finally:
                conn.close()
            if status == 200:
                break
        return status

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
