#!/usr/bin/env bash
# Copies into ROOTFS (default /rootfs) the part of this base image the operator's virtualenv runs
# on, for a final stage FROM scratch (the Dockerfile's "runtime" stage runs it): the interpreter
# /opt/venv points at, its standard library without what only developers and package builds use,
# the shared libraries the interpreter and every extension module (stdlib and /opt/venv) load (from
# ldd), CA certificates, and the account files. No shell, package manager, perl or coreutils.
#
#   hack/image/runtime-root.sh [ROOTFS]
set -euo pipefail
ROOTFS=${1:-/rootfs}
VENV=${VENV:-/opt/venv}
log() { echo "[runtime-root] $*" >&2; }

# Standard library parts the operator never imports: tests, IDLE/Tk, 2to3, pydoc's topics, pip's
# bootstrap, distutils, the build configuration; and extension modules that pull in libraries for
# things it never does (SQLite, dbm, curses, readline, NIS, audio) or exist only for CPython's tests.
STDLIB_DROP=(test idlelib tkinter turtledemo lib2to3 pydoc_data ensurepip distutils sqlite3 curses
  site-packages dist-packages 'config-3.*')
DYNLOAD_DROP=('_sqlite3.*' '_dbm.*' '_gdbm.*' '_curses.*' '_curses_panel.*' 'readline.*' '_tkinter.*'
  'nis.*' 'ossaudiodev.*' '_test*' '_ctypes_test.*' 'xxlimited*' '_xxtestfuzz.*' '_xxsubinterpreters.*')

copy() {  # copy paths (links as links) with their parent directories into ROOTFS
  local path
  for path in "$@"; do
    [[ -e $path || -L $path ]] || continue
    cp -a --parents "$path" "$ROOTFS"
  done
}

copy_chain() {  # a path and every symbolic link on the way to its target
  local path=$1 target
  while [[ -L $path ]]; do
    copy "$path"
    target=$(readlink "$path")
    [[ $target == /* ]] || target=$(dirname "$path")/$target
    path=$target
  done
  copy "$path"
}

mkdir -p "$ROOTFS"
# merged /usr: /bin, /lib, /lib64 and /sbin are links into /usr
for top in /bin /lib /lib64 /sbin; do
  if [[ -L $top ]]; then cp -a "$top" "$ROOTFS/" && mkdir -p "$ROOTFS/$(readlink -f "$top")"; fi
done

python=$(readlink -f "$VENV/bin/python")
copy_chain "$VENV/bin/python"
for name in python3 python3.11 python; do [[ -L $VENV/bin/$name ]] && copy_chain "$VENV/bin/$name"; done
stdlib=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
dynload=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["platstdlib"])')/lib-dynload
log "interpreter $python, standard library $stdlib"

mkdir -p "$ROOTFS$stdlib"
excludes=()
for name in "${STDLIB_DROP[@]}"; do excludes+=(-not -name "$name"); done
find "$stdlib" -mindepth 1 -maxdepth 1 "${excludes[@]}" -exec cp -a --parents {} "$ROOTFS" \;
for pattern in "${DYNLOAD_DROP[@]}"; do
  find "$ROOTFS$dynload" -maxdepth 1 -name "$pattern" -delete
done
# Bytecode for -O/-OO only (the interpreter runs without them).
find "$ROOTFS$stdlib" -name '*.opt-[12].pyc' -delete
# Debian's interpreter reads /etc/python3.11 (sitecustomize) when it is there.
copy /etc/python3.11

# Every shared library the interpreter and the extension modules load, and glibc's unwinder (loaded
# by name when a thread exits or is cancelled, so ldd cannot see it).
needed=$(mktemp)
{
  ldd "$python"
  find "$ROOTFS$dynload" "$VENV" -name '*.so*' -type f -exec ldd {} \; 2>/dev/null || true
} | sort -u >"$needed"
missing=0
while read -r line; do
  case $line in
    *"not found"*) log "unresolved: $line"; missing=1 ;;
    *"=> /"*) lib=${line#*=> }; copy_chain "${lib%% (*}" ;;
    /*) copy_chain "${line%% (*}" ;;
  esac
done <"$needed"
rm -f "$needed"
((missing == 0)) || { log "an extension module needs a library the base image lacks"; exit 1; }
for lib in /usr/lib/*-linux-gnu/libgcc_s.so.1 /usr/local/lib/libpython3*.so*; do copy_chain "$lib"; done
# The venv's own libraries (auditwheel's *.libs) came with it; they are not part of this root.
rm -rf "${ROOTFS:?}$VENV"

# CA certificates (the bundle, the links into /usr/share, OpenSSL's directory), the accounts, name
# service configuration, OS identification; empty files the runtime mounts over.
copy /etc/ssl /usr/share/ca-certificates /usr/lib/ssl /etc/passwd /etc/group /etc/nsswitch.conf \
  /etc/host.conf /etc/os-release /usr/lib/os-release
mkdir -p "$ROOTFS"/{tmp,proc,sys,dev,run,var/tmp}
chmod 1777 "$ROOTFS/tmp" "$ROOTFS/var/tmp"
touch "$ROOTFS"/etc/{hosts,resolv.conf,hostname}
log "$(du -sm "$ROOTFS" | cut -f1) MB in $ROOTFS"
