#!/usr/bin/env bash
# Load image archives (from hack/images/build.sh) into the runtimes that are up:
#   - the local cluster's containerd, namespace k8s.io, so kubelet finds them without a pull;
#   - the Docker engine, when `docker info` answers.
# An archive already loaded (same config digest) is skipped, so re-running is cheap.
set -euo pipefail

cache="${STELLARSTACK_CACHE:-$HOME/.cache/stellarstack}"
cluster_dir="${STELLARSTACK_CLUSTER_DIR:-$cache/cluster}"
sock="$cluster_dir/run/containerd/containerd.sock"

log() { echo "images: $*" >&2; }

# "<config digest> <tag>" of a docker-save archive, read from its manifest.json.
describe() {
  tar -xOf "$1" manifest.json | python3 -c '
import json, sys
entry = json.load(sys.stdin)[0]
print("sha256:" + entry["Config"].removesuffix(".json"), entry["RepoTags"][0])'
}

docker_up=0
if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then docker_up=1; fi
containerd_up=0
if [ -S "$sock" ] && ctr --address "$sock" version >/dev/null 2>&1; then containerd_up=1; fi
if [ "$docker_up" = 0 ] && [ "$containerd_up" = 0 ]; then
  log "no Docker engine and no cluster containerd running; archives stay in $cache/images"
fi

for archive in "$@"; do
  read -r digest tag < <(describe "$archive")
  if [ "$docker_up" = 1 ]; then
    if [ "$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)" = "$digest" ]; then
      log "docker: $tag already loaded"
    else
      docker load -q -i "$archive" >/dev/null
      log "docker: loaded $tag"
    fi
  fi
  if [ "$containerd_up" = 1 ]; then
    # ctr lists config digests only per platform; a marker beside containerd's own state
    # (removed with the cluster) remembers what was imported into this containerd.
    marker="$cluster_dir/images-loaded/$(echo "$tag" | tr '/:' '__')"
    if [ "$(cat "$marker" 2>/dev/null)" = "$digest" ] \
        && ctr --address "$sock" -n k8s.io images ls -q "name==$tag" | grep -qx "$tag"; then
      log "containerd: $tag already loaded"
    else
      ctr --address "$sock" -n k8s.io images import "$archive" >/dev/null
      mkdir -p "$(dirname "$marker")"
      echo "$digest" > "$marker"
      log "containerd: loaded $tag"
    fi
  fi
done
