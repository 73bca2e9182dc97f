"""Clear startup errors: `opsdraft run` with its HTTP port taken exits 1 with one line (it used to print
"HTTP on ..." and then die with a segfault, 139)."""

import os
import socket
import subprocess
import sys


def test_a_port_in_use_exits_1_with_one_line(tmp_path, kafka_bootstrap):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {**os.environ, "OPSDRAFT_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "OPSDRAFT_HTTP_PORT": str(port),
               "OPSDRAFT_DATA_DIR": str(tmp_path), "OPSDRAFT_INSECURE_DEV": "true", "OPSDRAFT_MODEL": "none",
               "OPSDRAFT_DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite", "OPSDRAFT_REDACTION_MODE": "patterns"}
        proc = subprocess.run([sys.executable, "-m", "opsdraft_app.cli", "run", "--roles", "http"], env=env,
                              capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-500:], proc.stderr[-2000:])
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0] and "already in use" in lines[0], proc.stderr
    assert "HTTP on" not in proc.stdout  # nothing claimed to be listening
