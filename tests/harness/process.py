"""A child process that logs to a file and can never outlive the test run."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_live: set[ManagedProcess] = set()


class ProcessError(RuntimeError):
    """A managed process failed; the message carries the tail of its log."""

    def __init__(self, message: str, *, address_in_use: bool = False) -> None:
        super().__init__(message)
        # Lets callers that picked a "free" port which got taken meanwhile retry with another.
        self.address_in_use = address_in_use


# Resolved up front: the forked child should do as little as possible (no dlopen, no locks).
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    # Runs in the forked child: if pytest is SIGKILLed, the kernel kills us too, so no orphans.
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))


class ManagedProcess:
    """One long-running binary in its own process group with stdout+stderr appended to ``log``."""

    def __init__(self, name: str, argv: Sequence[str], log: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise ProcessError(f"{self.name} is already running")
        with self.log.open("ab") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} starting: {' '.join(self.argv)}\n".encode())
            out.flush()
            # PDEATHSIG fires when the forking *thread* ends, so it is only safe from the main thread.
            main_thread = threading.current_thread() is threading.main_thread()
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if main_thread else None,  # noqa: PLW1509
            )
        _live.add(self)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the whole process group, SIGKILL it if it lingers, and reap it."""
        proc, self._proc = self._proc, None
        _live.discard(self)
        if proc is None or proc.returncode is not None:
            return  # Already reaped: its pid may belong to someone else by now.
        # start_new_session made the child a group leader, so its pid is the group id.  Until the
        # leader is reaped its pid cannot be recycled, so signalling the group only hits our processes.
        _signal_group(proc.pid, signal.SIGTERM)
        if not _exited(proc.pid, timeout):
            _signal_group(proc.pid, signal.SIGKILL)
            _exited(proc.pid, timeout)
        # Sweeps up anything the binary forked, then reaps the leader.
        _signal_group(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def error(self, message: str) -> ProcessError:
        running = self.running
        state = "running" if running else f"exited with {self.returncode}"
        tail = self.log_tail()
        return ProcessError(
            f"{self.name}: {message} ({state}); last lines of {self.log}:\n{tail}",
            address_in_use=not running and "address already in use" in tail,
        )


def _exited(pid: int, timeout: float) -> bool:
    """Wait for ``pid`` to exit without reaping it (WNOWAIT), so the pid stays ours."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        proc.stop(timeout=5.0)
