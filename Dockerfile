# The operator image. Three stages from one base image: the builder turns constraints.txt into
# wheels, installs them into a virtualenv and prunes it (hack/image/prune.py: botocore's data for
# every service but the three the operator calls, and packages nothing imports); the runtime stage
# copies out of the base image only what that virtualenv runs on (hack/image/runtime-root.sh: the
# interpreter, its standard library, the shared libraries its extension modules load, CA
# certificates); the final stage, FROM scratch, is that and the virtualenv: no shell, package
# manager, compilers or pip. It runs as UID 65532 on a read-only root filesystem.
#
#   docker build -t REGISTRY/ecr-pull-secret-operator:TAG .
#
# Offline (no package index reachable from the build): fill hack/image/wheelhouse/ with
# hack/image/wheels.sh and add --build-arg PIP_NO_INDEX=1. Another base image (same Python
# minor version, Debian-like): --build-arg BASE_IMAGE=...
ARG BASE_IMAGE=python:3.11.14-slim-bookworm

FROM ${BASE_IMAGE} AS builder
# pip reads PIP_* from the environment; build args are in it during RUN (and not in the image).
ARG PIP_NO_INDEX=0
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_FIND_LINKS=/wheelhouse \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY hack/image/wheelhouse/ /wheelhouse/
COPY pyproject.toml constraints.txt README.md ./
COPY operator/ operator/
COPY hack/image/prune.py hack/image/
# Wheels first (the project's own and every pinned dependency), then an install from those wheels
# only. Then out go what the operator never runs: pip, setuptools, the kubernetes client's asyncio
# variant (kubernetes.aio, 70 MB; the operator uses the synchronous client and kopf), and what
# hack/image/prune.py removes (botocore's data for ~420 services, boto3, s3transfer, bundled tests).
RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/pip wheel --wheel-dir /wheels --constraint constraints.txt . \
    && /opt/venv/bin/pip install --no-index --find-links /wheels --constraint constraints.txt \
        /wheels/ecr_pull_secret_operator-*.whl \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && rm -rf /opt/venv/lib/python3*/site-packages/kubernetes/aio \
    && /opt/venv/bin/python hack/image/prune.py /opt/venv/lib/python3*/site-packages \
    && /opt/venv/bin/python -m compileall -q -j 0 /opt/venv/lib \
    && /opt/venv/bin/ecr-pull-secrets --version

FROM ${BASE_IMAGE} AS runtime
# A passwd entry for the numeric user: getpass (used by kopf for its peer id) needs a name.
RUN groupadd --gid 65532 nonroot \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin nonroot
COPY --from=builder /opt/venv /opt/venv
COPY hack/image/runtime-root.sh /usr/local/bin/
RUN runtime-root.sh /rootfs

FROM scratch
LABEL org.opencontainers.image.title="ecr-pull-secret-operator" \
      org.opencontainers.image.description="Keeps Amazon ECR image pull Secrets fresh in Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=runtime /rootfs /
COPY --from=builder /opt/venv /opt/venv
# Bytecode is compiled at build time; nothing is written at run time (read-only root filesystem).
ENV PATH=/opt/venv/bin:/usr/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["ecr-pull-secrets"]
CMD ["run"]
