#!/usr/bin/env bash
# Build the test images from Debian packages, without any container registry, and load them
# into the local cluster's containerd (when it runs) and into the Docker engine (when it runs).
#
#   hack/images/build.sh [--no-load] [pause|toy|debian|armagetronad|openttd ...]
#
# Each image is a single-layer "docker save" archive cached under
# ${STELLARSTACK_CACHE:-~/.cache/stellarstack}/images/<name>.tar. An archive is rebuilt only
# when the inputs that made it change (this script, mkimage.py, the image's own files), so a
# re-run costs only the (idempotent) loading step. Needs root: debootstrap and chown do.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cache="${STELLARSTACK_CACHE:-$HOME/.cache/stellarstack}"
imgdir="$cache/images"
prefix="${STELLARSTACK_IMAGE_PREFIX:-localhost/stellarstack}"
# The unprivileged user every game-server image runs as; /data is its writable home.
game_uid=1000
arch="$(dpkg --print-architecture)"

declare -A tags=(
  [pause]="$prefix/pause:1"
  [toy]="$prefix/toy:1"
  [debian]="$prefix/debian:bookworm"
  [armagetronad]="$prefix/armagetronad:1"
  [openttd]="$prefix/openttd:1"
)
all=(pause toy debian armagetronad openttd)

load=1
names=()
for arg in "$@"; do
  case "$arg" in
    --no-load) load=0 ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *)
      [ -n "${tags[$arg]:-}" ] || { echo "unknown image: $arg (known: ${all[*]})" >&2; exit 2; }
      names+=("$arg") ;;
  esac
done
[ "${#names[@]}" -gt 0 ] || names=("${all[@]}")

mkdir -p "$imgdir"
work="$(mktemp -d "$imgdir/work.XXXXXX")"
trap 'rm -rf "$work"' EXIT

log() { echo "images: $*" >&2; }

# The input hash of an image: the files that decide its content.
inputs_hash() {
  local name="$1"
  {
    echo "$name ${tags[$name]} $arch $game_uid"
    cat "$here/build.sh" "$here/mkimage.py"
    if [ -d "$here/$name" ]; then
      find "$here/$name" -type f | LC_ALL=C sort | xargs cat
    fi
  } | sha256sum | cut -d' ' -f1
}

up_to_date() {
  local name="$1"
  [ -f "$imgdir/$name.tar" ] && [ "$(cat "$imgdir/$name.tar.inputs" 2>/dev/null)" = "$(inputs_hash "$name")" ]
}

# Pack a root directory into a layer: numeric owners, stable order and times, and without the
# contents of /dev, /proc and /sys, which the container runtime mounts itself.
pack_rootfs() {
  local root="$1" out="$2"
  tar --numeric-owner --sort=name --mtime=@0 --xattrs --exclude='./dev/*' --exclude='./proc/*' \
    --exclude='./sys/*' -C "$root" -cf "$out" .
}

# A root made of Debian's static busybox: /bin with every applet, /etc with a root and a
# "game" user, a sticky /tmp and a /data the game user owns.
busybox_root() {
  local root="$1" applet
  mkdir -p "$root"/{bin,etc,tmp,data,dev,proc,sys,usr/local/bin}
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\ngame:x:%s:%s:game:/data:/bin/sh\n' \
    "$game_uid" "$game_uid" > "$root/etc/passwd"
  printf 'root:x:0:\ngame:x:%s:\n' "$game_uid" > "$root/etc/group"
  chmod 1777 "$root/tmp"
  chown "$game_uid:$game_uid" "$root/data"
}

# Copy a dynamically linked program and the shared libraries ldd names, at the same paths.
copy_with_libs() {
  local root="$1" prog="$2" lib
  install -D -m 0755 "$prog" "$root$prog"
  for lib in $(ldd "$prog" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# The mirror apt already uses on this machine, so debootstrap needs no configuration of its
# own; empty means debootstrap's default.
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  apt-get indextargets --format '$(REPO_URI)' 'Created-By: Packages' 2>/dev/null \
    | grep -v -- '-security' | grep -m1 '/debian/$' || true
}

# Minimal Debian bookworm root, plus the packages given; apt's caches, lists and
# documentation removed, apt told not to keep caches or install recommends in later layers.
debian_root() {
  local root="$1" include="$2" mirror
  mirror="$(debian_mirror)"
  mkdir -p "$cache/debs"
  local args=(--variant=minbase --cache-dir="$cache/debs")
  [ -n "$include" ] && args+=(--include="$include")
  log "debootstrap bookworm ${include:+(with $include)}"
  # debootstrap is chatty; keep its log and show it only on failure.
  if ! debootstrap "${args[@]}" bookworm "$root" ${mirror:+"$mirror"} >"$work/debootstrap.log" 2>&1; then
    tail -30 "$work/debootstrap.log" >&2
    return 1
  fi
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* "$root"/usr/share/man/* \
    "$root"/usr/share/info/* "$root"/var/log/*.log "$root"/var/log/apt/* "$root"/tmp/*
  cat > "$root/etc/apt/apt.conf.d/90stellarstack" <<'CONF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CONF
  # A numeric game user with a writable /data, like the busybox images.
  if ! grep -q "^game:" "$root/etc/passwd"; then
    echo "game:x:$game_uid:$game_uid:game:/data:/bin/sh" >> "$root/etc/passwd"
    echo "game:x:$game_uid:" >> "$root/etc/group"
  fi
  mkdir -p "$root/data"
  chown "$game_uid:$game_uid" "$root/data"
}

mkimage() {
  python3 "$here/mkimage.py" --arch "$arch" "$@"
}

build_one() {
  local name="$1" root="$work/$name-root" layer="$work/$name-layer.tar"
  local tag="${tags[$name]}" out="$imgdir/$name.tar"
  local start
  start=$(date +%s)
  case "$name" in
    pause)
      # The pod sandbox: a shell that sleeps until told to stop. Signals end it cleanly.
      busybox_root "$root"
      install -m 0755 "$here/pause/pause" "$root/pause"
      pack_rootfs "$root" "$layer"
      mkimage --layer "$layer" --tag "$tag" --out "$out" --entrypoint '["/pause"]' \
        --user 65535:65535
      ;;
    toy)
      busybox_root "$root"
      copy_with_libs "$root" "$(command -v socat)"
      install -m 0755 "$here/toy/toy" "$here/toy/toy-status" "$root/usr/local/bin/"
      pack_rootfs "$root" "$layer"
      mkimage --layer "$layer" --tag "$tag" --out "$out" --entrypoint '["/usr/local/bin/toy"]' \
        --user "$game_uid:$game_uid" --workdir /data --env HOME=/data --env TOY_NAME=toy \
        --expose 7777/tcp --expose 7778/udp
      ;;
    debian)
      debian_root "$root" ""
      pack_rootfs "$root" "$layer"
      mkimage --layer "$layer" --tag "$tag" --out "$out" --cmd '["/bin/bash"]'
      ;;
    armagetronad)
      debian_root "$root" armagetronad-dedicated
      pack_rootfs "$root" "$layer"
      # The real binary, not Debian's wrapper: the wrapper backgrounds the server and so cuts
      # it off from stdin, its console. It ignores SIGTERM as PID 1; `QUIT` on stdin stops it.
      mkimage --layer "$layer" --tag "$tag" --out "$out" \
        --entrypoint '["/usr/games/armagetronad-dedicated.real","--datadir","/usr/share/games/armagetronad","--configdir","/etc/armagetronad","--userdatadir","/data"]' \
        --user "$game_uid:$game_uid" --workdir /data --env HOME=/data --expose 4534/udp
      ;;
    openttd)
      debian_root "$root" openttd,openttd-opengfx
      pack_rootfs "$root" "$layer"
      mkimage --layer "$layer" --tag "$tag" --out "$out" --entrypoint '["/usr/games/openttd","-D"]' \
        --user "$game_uid:$game_uid" --workdir /data --env HOME=/data \
        --env XDG_DATA_HOME=/data/.local/share --env XDG_CONFIG_HOME=/data/.config \
        --expose 3979/tcp --expose 3979/udp
      ;;
  esac
  inputs_hash "$name" > "$out.inputs"
  rm -rf "$root" "$layer"
  log "built $tag ($(du -h "$out" | cut -f1), $(( $(date +%s) - start ))s)"
}

for name in "${names[@]}"; do
  if up_to_date "$name"; then
    log "$name is up to date ($imgdir/$name.tar)"
  else
    build_one "$name"
  fi
done

if [ "$load" = 1 ]; then
  archives=()
  for name in "${names[@]}"; do archives+=("$imgdir/$name.tar"); done
  "$here/load.sh" "${archives[@]}"
fi
