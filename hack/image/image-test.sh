#!/usr/bin/env bash
# `make image-test`: build the image without a daemon or a registry, check it, and run it against
# the local control plane and AWS emulator (`make dev-up`) until an EcrPullSecret is Ready.
#
# Needs buildah, podman, runc and (unless BASE_IMAGE is given) debootstrap: `make image-tools`.
#   BASE_IMAGE=...   base image already in local storage (default: built by base-image.sh)
#   IMAGE=...        tag to build (default localhost/ecr-pull-secret-operator:test)
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CONTAINERS_CONF=$ROOT/hack/image/containers.conf
IMAGE=${IMAGE:-localhost/ecr-pull-secret-operator:test}
PY=$ROOT/.venv/bin/python
NAME=ecr-pull-secrets-image-test-$$

log() { echo "[image-test] $*" >&2; }
for tool in buildah podman runc; do
  command -v "$tool" >/dev/null || { log "needs $tool: run 'make image-tools'"; exit 1; }
done

BASE_IMAGE=${BASE_IMAGE:-$(hack/image/base-image.sh)}
log "base image: $BASE_IMAGE"
hack/image/wheels.sh
.venv/bin/hadolint Dockerfile && log "hadolint: Dockerfile clean"

started=$(date +%s)
buildah build --quiet --isolation chroot --pull=never --layers \
  --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg PIP_NO_INDEX=1 \
  --tag "$IMAGE" --file Dockerfile . >/dev/null
build_seconds=$(( $(date +%s) - started ))
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE_IMAGE")
log "built $IMAGE in ${build_seconds}s: $(( size / 1000000 )) MB (base $(( base_size / 1000000 )) MB)"

# -- static checks: what the image is, and what it does not contain --------------------------
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
entrypoint=$(podman image inspect --format '{{json .Config.Entrypoint}} {{json .Config.Cmd}}' "$IMAGE")
[[ $user == "65532:65532" ]] || { log "image user is '$user', want 65532:65532"; exit 1; }
[[ $entrypoint == '["ecr-pull-secrets"] ["run"]' ]] || { log "entrypoint/cmd: $entrypoint"; exit 1; }
# As the image's user: identity, bytecode setting, and every runtime import resolves.
podman run --rm --read-only --network none --entrypoint /opt/venv/bin/python "$IMAGE" -c '
import os, sys
assert os.getuid() == 65532 and os.getgid() == 65532, (os.getuid(), os.getgid())
assert sys.dont_write_bytecode, "PYTHONDONTWRITEBYTECODE is not set"
import ecr_pull_secrets.runtime  # kopf, boto3, kubernetes
'
# As root, to see everything: no pip, compilers, shell, package manager or caches; botocore's data
# for the kept services only, no boto3 (hack/image/prune.py); bytecode compiled at build time.
podman run --rm --read-only --network none --user 0 --entrypoint /opt/venv/bin/python "$IMAGE" -c '
import importlib.util, pathlib, shutil
import botocore
from ecr_pull_secrets.aws.services import KEPT
assert importlib.util.find_spec("pip") is None, "pip is in the virtualenv"
for tool in ("gcc", "cc", "make", "g++", "sh", "bash", "apt-get", "dpkg", "perl"):
    assert shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin") is None, f"{tool} is in the final image"
for module in ("boto3", "s3transfer"):
    assert importlib.util.find_spec(module) is None, f"{module} is in the virtualenv"
data = pathlib.Path(botocore.__file__).parent / "data"
services = sorted(p.name for p in data.iterdir() if p.is_dir())
assert services == sorted(KEPT), f"botocore data for {services}"
caches = [p for p in map(pathlib.Path, ("/root/.cache", "/tmp", "/wheels", "/wheelhouse", "/src"))
          if p.exists() and any(p.iterdir())]
assert not caches, f"left in the image: {caches}"
site = next(pathlib.Path("/opt/venv/lib").glob("python3*/site-packages"))
sources = [p for p in site.rglob("*.py")]
missing = [p for p in sources if not list(p.parent.glob(f"__pycache__/{p.stem}.*.pyc"))]
assert len(missing) <= len(sources) // 100, f"{len(missing)} modules without bytecode: {missing[:3]}"
kept = ", ".join(services)
print(f"image checks ok: {len(sources)} modules, {len(missing)} without bytecode; botocore data: {kept}")
'

# -- run it against the control plane and the AWS emulator -----------------------------------
dev_started=0
if [[ ! -f .dev/env ]]; then
  make --no-print-directory dev-up >/dev/null
  dev_started=1
fi
# shellcheck disable=SC1091
source .dev/env
namespace=image-test-$(date +%s)
work=$(mktemp -d)
cleanup() {
  podman rm --force --time 5 "$NAME" >/dev/null 2>&1 || true
  kubectl delete namespace "$namespace" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
  if (( dev_started )); then make --no-print-directory dev-down >/dev/null || true; fi
}
trap cleanup EXIT
kubectl create namespace "$namespace" >/dev/null
# The container user must read them; both are throwaway test credentials.
install -m 0644 "$KUBECONFIG" "$work/kubeconfig"
printf 'operatorIdentity:\n  namespaces: ["%s"]\nassumeRoles: []\n' "$namespace" >"$work/policy.yaml"
chmod 0755 "$work"
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
metrics_port=$(free_port)

# What the chart's pod spec asks for: read-only root, no capabilities, no privilege escalation.
podman run --detach --name "$NAME" --network host --read-only --cap-drop ALL \
  --security-opt no-new-privileges --user 65532:65532 \
  --volume "$work/kubeconfig:/var/run/kube/config:ro" \
  --volume "$work/policy.yaml:/etc/ecr-pull-secrets/policy.yaml:ro" \
  --env KUBECONFIG=/var/run/kube/config \
  --env AWS_ENDPOINT_URL --env AWS_REGION --env AWS_DEFAULT_REGION --env AWS_EC2_METADATA_DISABLED \
  --env AWS_ACCESS_KEY_ID --env AWS_SECRET_ACCESS_KEY \
  --env ECR_PULL_SECRETS_LOG_FORMAT=json \
  "$IMAGE" run --namespace "$namespace" --liveness "http://127.0.0.1:$port/healthz" \
  --metrics-port "$metrics_port" --policy /etc/ecr-pull-secrets/policy.yaml >/dev/null

for _ in $(seq 60); do
  if "$PY" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/healthz', timeout=2)" 2>/dev/null; then
    break
  fi
  if [[ $(podman inspect --format '{{.State.Running}}' "$NAME") != true ]]; then
    podman logs "$NAME" | tail -40 >&2; log "the operator exited"; exit 1
  fi
  sleep 1
done
log "operator container live on :$port"

started=$(date +%s)
kubectl apply -f - >/dev/null <<YAML
apiVersion: ecr.pullsecrets.dev/v1alpha1
kind: EcrPullSecret
metadata:
  name: image-test
  namespace: $namespace
spec:
  registries:
    - 123456789012.dkr.ecr.us-east-1.amazonaws.com
    - 123456789012.dkr.ecr.eu-west-1.amazonaws.com
YAML
if ! kubectl wait --namespace "$namespace" --for=condition=Ready --timeout=60s ecrpullsecret/image-test >/dev/null; then
  kubectl get ecrpullsecret -n "$namespace" -o yaml >&2
  podman logs "$NAME" | tail -40 >&2
  exit 1
fi
ready_seconds=$(( $(date +%s) - started ))
kubectl get ecrpullsecret -n "$namespace" image-test
secret_type=$(kubectl get secret -n "$namespace" image-test -o jsonpath='{.type}')
[[ $secret_type == kubernetes.io/dockerconfigjson ]] || { log "Secret type '$secret_type'"; exit 1; }
if podman logs "$NAME" 2>&1 | grep -E '"levelname": "(ERROR|CRITICAL)"|Traceback' >&2; then
  log "the operator logged errors"; exit 1
fi
metrics=$("$PY" -c "import urllib.request as u; print(u.urlopen('http://127.0.0.1:$metrics_port/metrics', timeout=5).read().decode())")
grep -q '^ecr_pull_secrets_' <<<"$metrics" || { log "no ecr_pull_secrets_ metrics on :$metrics_port"; exit 1; }
log "metrics served on :$metrics_port ($(grep -c '^ecr_pull_secrets_' <<<"$metrics") ecr_pull_secrets_ samples)"
rss=$(podman exec "$NAME" /opt/venv/bin/python -c 'print(open("/proc/1/status").read().split("VmRSS:")[1].split()[0])')
log "EcrPullSecret Ready ${ready_seconds}s after creation; operator RSS $(( rss / 1024 )) MiB"
echo "image-test passed: $IMAGE $(( size / 1000000 )) MB, build ${build_seconds}s, Ready in ${ready_seconds}s"
