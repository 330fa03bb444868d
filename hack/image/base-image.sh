#!/usr/bin/env bash
# Builds a local Debian bookworm + Python 3.11 base image (localhost/ecr-pull-secrets-base:bookworm)
# with debootstrap from the apt mirror this machine is configured with, for image builds where no
# container registry is reachable. The Dockerfile's default base (python:3.11-slim-bookworm) is the
# one to use wherever a registry is; this one only has the same Python minor version and layout
# the Dockerfile needs (python3, venv).
#
#   hack/image/base-image.sh            # prints the image name; builds it once, then cached
set -euo pipefail

IMAGE=${BASE_IMAGE_NAME:-localhost/ecr-pull-secrets-base:bookworm}
PACKAGES=python3.11,python3.11-venv,python3-pip-whl,python3-setuptools-whl,python3-distutils,python3-lib2to3,ca-certificates
CACHE=${XDG_CACHE_HOME:-$HOME/.cache}/ecr-pull-secrets/image
KEY=$(printf '%s' "bookworm:$PACKAGES" | sha256sum | cut -c1-12)
TARBALL=$CACHE/base-bookworm-$KEY.tar

log() { echo "[base-image] $*" >&2; }

mirror() {
  # The first bookworm (not -security, not -updates) source of apt's configuration.
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(awk '
    /^URIs:/ { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == "bookworm") { print uris; exit } }
  ' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [[ -z $uri && -f /etc/apt/sources.list ]]; then
    uri=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' /etc/apt/sources.list)
  fi
  [[ -n $uri ]] || { log "no bookworm apt source found; set DEBIAN_MIRROR"; exit 1; }
  echo "$uri"
}

if podman image exists "$IMAGE" && [[ $(podman image inspect --format '{{index .Labels "base-key"}}' "$IMAGE" 2>/dev/null) == "$KEY" ]]; then
  echo "$IMAGE"
  exit 0
fi

if [[ ! -s $TARBALL ]]; then
  command -v debootstrap >/dev/null || { log "needs debootstrap (apt-get install debootstrap)"; exit 1; }
  mkdir -p "$CACHE"
  rootfs=$(mktemp -d "$CACHE/.rootfs-XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm ($PACKAGES) from $(mirror)"
  debootstrap --variant=minbase --include="$PACKAGES" bookworm "$rootfs" "$(mirror)" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  # What a slim image leaves out too: package lists, caches, docs, man pages, locales.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/cache/debconf/*-old \
    "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
    "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* "$rootfs"/debootstrap
  tar --numeric-owner -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
fi

log "importing $TARBALL as $IMAGE"
podman import --quiet \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "LABEL base-key=$KEY" \
  --change 'CMD ["python3"]' \
  "$TARBALL" "$IMAGE" >/dev/null
echo "$IMAGE"
