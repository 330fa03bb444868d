# Container image. Opt-in (not part of `make test`): needs buildah, podman and runc, and debootstrap
# for a local base image when no registry is reachable.
.PHONY: image-tools image image-test image-lint

IMAGE ?= localhost/ecr-pull-secret-operator:dev
export CONTAINERS_CONF ?= $(CURDIR)/hack/image/containers.conf

# Debian packages for daemonless builds (as root; otherwise install them yourself).
image-tools:
	@missing=""; for t in buildah podman runc debootstrap; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah podman runc debootstrap; \
	fi

image-lint: venv
	$(BIN)/hadolint Dockerfile

# Builds $(IMAGE) from local wheels on a local base image (BASE_IMAGE=... to use another one).
image: image-tools venv image-lint
	hack/image/wheels.sh
	buildah build --isolation chroot --pull=never --layers \
	  --build-arg BASE_IMAGE=$${BASE_IMAGE:-$$(hack/image/base-image.sh)} --build-arg PIP_NO_INDEX=1 \
	  --tag $(IMAGE) --file Dockerfile .
	@podman image inspect --format '{{.Size}}' $(IMAGE) | awk '{printf "$(IMAGE): %d MB\n", $$1 / 1000000}'

# Build, check and run the image against the local control plane + AWS emulator until Ready.
image-test: image-tools venv binaries
	hack/image/image-test.sh
