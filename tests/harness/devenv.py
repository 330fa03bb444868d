"""`make dev-up` / `make dev-down`: the test harness as a long-lived local environment.

`up` starts a detached supervisor that runs the control plane and the AWS emulator, installs
the CRDs and writes `.dev/env` (shell exports); `down` stops it. Tests use the same classes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.harness.aws_emulator import AwsEmulator
from tests.harness.binaries import ensure_binaries
from tests.harness.controlplane import ControlPlane

ROOT = Path(__file__).resolve().parents[2]
DEV = ROOT / ".dev"
ENV_FILE = DEV / "env"
PID_FILE = DEV / "supervisor.pid"
LOG_FILE = DEV / "supervisor.log"
START_TIMEOUT = 180.0


def up() -> int:
    if _running_pid() is not None and ENV_FILE.exists():
        print(f"dev environment already up; source {ENV_FILE.relative_to(ROOT)}")
        return 0
    DEV.mkdir(exist_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    with LOG_FILE.open("wb") as log:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.devenv", "serve"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    PID_FILE.write_text(str(supervisor.pid))
    deadline = time.monotonic() + START_TIMEOUT
    while not ENV_FILE.exists():
        if supervisor.poll() is not None or time.monotonic() > deadline:
            print(LOG_FILE.read_text(errors="replace")[-4000:], file=sys.stderr)
            print("dev environment failed to start", file=sys.stderr)
            return 1
        time.sleep(0.3)
    print(f"dev environment up; run: source {ENV_FILE.relative_to(ROOT)}")
    print(ENV_FILE.read_text(), end="")
    return 0


def down() -> int:
    pid = _running_pid()
    if pid is None:
        print("dev environment is not running")
    else:
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if _running_pid() is None:
                break
            time.sleep(0.2)
        print("dev environment stopped")
    PID_FILE.unlink(missing_ok=True)
    ENV_FILE.unlink(missing_ok=True)
    return 0


def serve() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    binaries = ensure_binaries()
    with ControlPlane(DEV / "controlplane", binaries=binaries) as cp, AwsEmulator() as aws:
        subprocess.run(
            [
                str(binaries / "kubectl"),
                "--kubeconfig",
                str(cp.kubeconfig),
                "apply",
                "--server-side",
                "-f",
                str(ROOT / "deploy" / "crds"),
            ],
            check=True,
        )
        exports = {**aws.env(), "KUBECONFIG": str(cp.kubeconfig), "PATH": f"{binaries}:$PATH"}
        ENV_FILE.write_text("".join(f'export {k}="{v}"\n' for k, v in sorted(exports.items())))
        stop.wait()
    return 0


def _running_pid() -> int | None:
    try:
        pid = int(PID_FILE.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None
    return pid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=("up", "down", "serve"))
    command = parser.parse_args().command
    return {"up": up, "down": down, "serve": serve}[command]()


if __name__ == "__main__":
    sys.exit(main())
