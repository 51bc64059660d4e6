#!/usr/bin/env bash
# Start a Docker engine in the background when none answers. Idempotent.
set -euo pipefail
if docker info >/dev/null 2>&1; then exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "dockerd is not installed (Debian package docker.io); Docker tests will skip" >&2
  exit 0
fi
log_dir="${XDG_STATE_HOME:-$HOME/.local/state}/stellarstack"
mkdir -p "$log_dir"
nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then echo "== dockerd is up"; exit 0; fi
  sleep 0.5
done
echo "dockerd did not answer within 30 s; see $log_dir/dockerd.log" >&2
exit 1
