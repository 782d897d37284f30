"""Sites run from namespace folders (`skupper-node run -n NS`) for declarative-API tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness import free_port, limit_files, wait_until

from skupper_actors.api import (
    API_VERSION,
    Namespace,
    Resource,
    dump_resources,
    read_status,
)
from skupper_actors.management import ManagementClient, NodeStatus


def yaml_doc(kind: str, name: str, spec: dict[str, Any] | None = None) -> str:
    import yaml

    doc: dict[str, Any] = {"apiVersion": API_VERSION, "kind": kind, "metadata": {"name": name}}
    if spec is not None:
        doc["spec"] = spec
    return yaml.safe_dump(doc, sort_keys=False)


class SiteProcess:
    def __init__(self, home: Path, name: str, *, link_access: bool = False) -> None:
        self.home = home
        self.name = name
        self.env = {**os.environ, "SKUPPER_ACTORS_HOME": str(home)}
        self.ns = Namespace.locate(name, environ=self.env)
        self.ns.resources_dir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = home / f"{name}.log"
        self.port = free_port() if link_access else None
        spec: dict[str, Any] = {"linkAccess": "default"} if link_access else {}
        spec["settings"] = {"grant-server-port": str(free_port())}
        self.write("Site", name, spec)
        if link_access:
            self.write(
                "RouterAccess",
                "skupper-router",
                {"roles": [{"name": "inter-router", "port": self.port}], "bindHost": "127.0.0.1"},
            )
        self.client = ManagementClient(self.ns.runtime_dir, timeout=3)
        self.nofile: int | None = None  # the node's open-file limit

    # -- resources ---------------------------------------------------------------------------
    def write(self, kind: str, name: str, spec: dict[str, Any] | None = None) -> Path:
        path = self.ns.resources_dir / f"{kind}-{name}.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(yaml_doc(kind, name, spec))
        os.replace(tmp, path)
        return path

    def write_resource(self, resource: Resource) -> None:
        path = self.ns.resources_dir / f"{resource.kind}-{resource.name}.yaml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(dump_resources([resource]))
        os.replace(tmp, path)

    def remove(self, kind: str, name: str) -> None:
        (self.ns.resources_dir / f"{kind}-{name}.yaml").unlink()

    def reload(self) -> NodeStatus:
        return self.client.request("reload")

    def status_of(self, kind: str, name: str) -> Resource | None:
        return read_status(self.ns, kind, name)

    def wait_condition(self, kind: str, name: str, condition: str, timeout: float = 15) -> Resource:
        def ready() -> Resource | None:
            found = self.status_of(kind, name)
            if found is not None and found.status is not None and found.status.is_true(condition):
                return found
            return None

        return wait_until(ready, timeout, what=f"{kind}/{name} {condition} at {self.name}")

    # -- process ------------------------------------------------------------------------------
    def start(self, *, nofile: int | None = None) -> SiteProcess:
        """Start the node; `nofile` sets its open-file limit (RLIMIT_NOFILE, soft and hard)."""
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        if nofile is not None:
            self.nofile = nofile
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "skupper_actors.node_cli",
                "run", "-n", self.ns.name, "--log-json",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            preexec_fn=None if self.nofile is None else limit_files(self.nofile),
        )
        log.close()
        wait_until(self.ready, 20, what=f"site {self.name} to answer management")
        return self

    def ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"site {self.name} exited: {self.log_path.read_text()[-3000:]}")
        return self.client.status().router.id == self.name

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_events(self, event: str) -> list[dict[str, Any]]:
        import json

        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if record.get("event") == event:
                    found.append(record)
        return found
