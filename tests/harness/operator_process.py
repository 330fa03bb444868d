"""The operator under test, run as a real subprocess (`python -m ecr_pull_secrets run`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

READY_TIMEOUT = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OperatorProcess:
    """Start, stop and restart the operator; it logs (at DEBUG) to `log_path`."""

    def __init__(
        self, log_path: Path, env: Mapping[str, str], args: Sequence[str], *, verbose: bool = True
    ) -> None:
        """`verbose`: DEBUG logs for tests to read; benchmarks measure the default (INFO)."""
        self.log_path = log_path
        self._verbose = ["--verbose"] if verbose else []
        # Only the AWS settings given here: nothing from the test runner's own environment or files.
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        isolated = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
        self._env = {**inherited, **isolated, **env, "PYTHONUNBUFFERED": "1"}
        self._args = list(args)
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = 0
        self.metrics_port = 0

    def start(self) -> OperatorProcess:
        self._port = _free_port()
        self.metrics_port = _free_port()
        argv = [
            sys.executable,
            "-m",
            "ecr_pull_secrets",
            "run",
            *self._verbose,
            "--liveness",
            f"http://127.0.0.1:{self._port}/healthz",
            "--metrics-port",
            str(self.metrics_port),
            *self._args,
        ]
        with self.log_path.open("ab") as log:
            log.write(f"=== starting: {' '.join(argv)}\n".encode())
            self._proc = subprocess.Popen(argv, env=self._env, stdout=log, stderr=subprocess.STDOUT)
        self._wait_live()
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """SIGKILL, as when a node dies: no shutdown handlers run."""
        if self._proc is None:
            return
        self._proc.kill()
        self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        """One Prometheus scrape of the operator, in the text format."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def _wait_live(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        url = f"http://127.0.0.1:{self._port}/healthz"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self._proc.returncode}:\n{self.log()[-4000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"operator not live after {READY_TIMEOUT}s:\n{self.log()[-4000:]}")
