"""Find or build etcd, kube-apiserver, kube-controller-manager and kubectl for the tests.

``KUBEBUILDER_ASSETS`` (a setup-envtest directory: etcd, kube-apiserver, kubectl) is used when
set; setup-envtest ships no kube-controller-manager, so whatever is missing there is built.
Builds run ``go build`` against the pinned modules in ``hack/controlplane/{kube,etcd}`` and land
in a cache directory named after the versions their go.mod files require, so bumping a version
means a fresh build.

    python -m tests.harness.binaries      # prints the directory, building first if needed
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MODULES_DIR = Path(__file__).resolve().parents[2] / "hack" / "controlplane"


@dataclass(frozen=True)
class Tool:
    name: str
    module: str  # directory under hack/controlplane
    package: str


ETCD = Tool("etcd", "etcd", "go.etcd.io/etcd/server/v3")
KUBE_APISERVER = Tool("kube-apiserver", "kube", "k8s.io/kubernetes/cmd/kube-apiserver")
KUBE_CONTROLLER_MANAGER = Tool(
    "kube-controller-manager", "kube", "k8s.io/kubernetes/cmd/kube-controller-manager"
)
KUBECTL = Tool("kubectl", "kube", "k8s.io/kubernetes/cmd/kubectl")
TOOLS = (ETCD, KUBE_APISERVER, KUBE_CONTROLLER_MANAGER, KUBECTL)


def _log(message: str) -> None:
    print(f"[controlplane-binaries] {message}", file=sys.stderr, flush=True)


def required_version(module_dir: Path, module_path: str) -> str:
    """The version ``module_dir/go.mod`` requires of ``module_path`` (replace lines are ignored)."""
    text = (module_dir / "go.mod").read_text()
    pattern = rf"^\s*(?:require\s+)?{re.escape(module_path)}\s+(v\S+)\s*(?://.*)?$"
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"{module_dir / 'go.mod'} does not require {module_path}")
    return match.group(1)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ecr-pull-secrets" / "controlplane"


def cache_key() -> str:
    kube = required_version(MODULES_DIR / "kube", "k8s.io/kubernetes")
    etcd = required_version(MODULES_DIR / "etcd", "go.etcd.io/etcd/server/v3")
    return f"k8s-{kube}_etcd-{etcd}"


def build_dir() -> Path:
    return cache_root() / cache_key()


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Exclusive across processes (e.g. pytest-xdist workers), released even if we crash."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another process to finish building ({lock_file})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _ldflags(tool: Tool) -> str:
    flags = ["-s", "-w"]  # No symbol tables: the binaries shrink by a third.
    if tool.module == "kube":
        # What Kubernetes' hack/lib/version.sh stamps; otherwise /version says v0.0.0-master.
        version = required_version(MODULES_DIR / "kube", "k8s.io/kubernetes")
        major, minor = version.removeprefix("v").split(".")[:2]
        stamp = {"gitVersion": version, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean"}
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [f"-X {package}.{key}={value}" for key, value in stamp.items()]
    return " ".join(flags)


def _go_build(tool: Tool, destination: Path) -> None:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(
            f"building {tool.name} needs Go (see hack/controlplane/{tool.module}/go.mod), "
            "or point KUBEBUILDER_ASSETS at prebuilt binaries"
        )
    # A go.work further up would pull these modules into someone else's build list.
    env = {**os.environ, "GOWORK": "off"}
    with tempfile.TemporaryDirectory(dir=destination.parent, prefix=".build-") as tmp:
        output = Path(tmp) / tool.name
        go_log = Path(tmp) / "go-build.log"
        argv = [go, "build", "-trimpath", f"-ldflags={_ldflags(tool)}", "-o", str(output), tool.package]
        _log(f"building {tool.name} in {MODULES_DIR / tool.module} (a cold build takes many minutes)")
        started = time.monotonic()
        with go_log.open("wb") as out:
            proc = subprocess.Popen(
                argv, cwd=MODULES_DIR / tool.module, env=env, stdout=out, stderr=subprocess.STDOUT
            )
            while True:
                try:
                    proc.wait(timeout=30)
                    break
                except subprocess.TimeoutExpired:
                    _log(f"  still building {tool.name} ({time.monotonic() - started:.0f}s)")
        if proc.returncode != 0:
            tail = "\n".join(go_log.read_text(errors="replace").splitlines()[-40:])
            raise RuntimeError(f"go build of {tool.name} failed ({proc.returncode}):\n{tail}")
        # Atomic: a concurrent reader sees either no binary or a complete one.
        os.replace(output, destination / tool.name)
        _log(f"built {tool.name} in {time.monotonic() - started:.0f}s")


def build_missing(destination: Path, tools: tuple[Tool, ...] = TOOLS) -> Path:
    """Build into ``destination`` whichever of ``tools`` it does not hold yet."""
    destination.mkdir(parents=True, exist_ok=True)
    if all(_executable(destination / t.name) for t in tools):
        return destination
    with _locked(destination.parent / f"{destination.name}.lock"):
        # Another process may have finished the build while we waited for the lock.
        for tool in tools:
            if not _executable(destination / tool.name):
                _go_build(tool, destination)
    return destination


def _warn_on_skew(assets: Path) -> None:
    # The controller manager must not be newer than the apiserver it talks to.
    ours = required_version(MODULES_DIR / "kube", "k8s.io/kubernetes")
    try:
        out = subprocess.run(
            [str(assets / KUBE_APISERVER.name), "--version"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return
    theirs = out.split()[-1] if out.split() else "unknown"
    if theirs.split(".")[:2] != ours.split(".")[:2]:
        _log(f"warning: KUBEBUILDER_ASSETS has kube-apiserver {theirs}, kube-controller-manager is {ours}")


def _merge_with_assets(assets: Path) -> Path:
    present = tuple(t for t in TOOLS if _executable(assets / t.name))
    missing = tuple(t for t in TOOLS if t not in present)
    if not missing:
        return assets
    if KUBE_CONTROLLER_MANAGER in missing and KUBE_APISERVER in present:
        _warn_on_skew(assets)
    built = build_missing(build_dir(), missing)
    # Symlinks in a directory of our own, so callers still get a single directory.
    digest = hashlib.sha256(str(assets.resolve()).encode()).hexdigest()[:12]
    merged = cache_root() / f"assets-{digest}_{cache_key()}"
    sources = {t.name: str(assets.resolve() / t.name) for t in present}
    sources.update({t.name: str(built / t.name) for t in missing})

    def up_to_date() -> bool:
        return all(os.path.realpath(merged / n) == src for n, src in sources.items())

    if up_to_date():
        return merged
    with _locked(cache_root() / f"{merged.name}.lock"):
        if not up_to_date():
            tmp = Path(tempfile.mkdtemp(dir=cache_root(), prefix=".assets-"))
            for name, src in sources.items():
                (tmp / name).symlink_to(src)
            shutil.rmtree(merged, ignore_errors=True)
            tmp.rename(merged)
    return merged


def ensure_binaries() -> Path:
    """A directory holding ``etcd``, ``kube-apiserver``, ``kube-controller-manager`` and ``kubectl``."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        return _merge_with_assets(Path(assets))
    return build_missing(build_dir())


if __name__ == "__main__":
    print(ensure_binaries())
