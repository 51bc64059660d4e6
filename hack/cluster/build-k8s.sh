#!/usr/bin/env bash
# Build the Kubernetes server binaries for the local test cluster, once, into a cache outside
# the repository: ${STELLARSTACK_CACHE:-~/.cache/stellarstack}/k8s/<version>/bin.
#
# The binaries come from the k8s.io/kubernetes Go module pinned in hack/k8s/go.mod and are
# compiled with the machine's own Go toolchain. A stamp file records the go.mod/go.sum hash, so
# a changed pin rebuilds and an unchanged one returns at once.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
moddir="$(cd "$here/../k8s" && pwd)"
cache="${STELLARSTACK_CACHE:-$HOME/.cache/stellarstack}"

version="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" {print $3}' "$moddir/go.mod")"
if [ -z "$version" ]; then
  echo "build-k8s: cannot read the k8s.io/kubernetes version from hack/k8s/go.mod" >&2
  exit 1
fi
bindir="$cache/k8s/$version/bin"
stamp="$bindir/.stamp"
want="$(cat "$moddir/go.mod" "$moddir/go.sum" | sha256sum | cut -d' ' -f1)"
cmds=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() {
  local c
  for c in "${cmds[@]}"; do [ -x "$bindir/$c" ] || return 1; done
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]
}

if have_all; then
  echo "$bindir"
  exit 0
fi

# Go may live outside PATH on a fresh machine (the official tarball's default location).
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH="$PATH:/usr/local/go/bin"
fi
command -v go >/dev/null 2>&1 || { echo "build-k8s: no Go toolchain on PATH" >&2; exit 1; }

major="${version#v}"; major="${major%%.*}"
minor="${version#v*.}"; minor="${minor%%.*}"
pkg=k8s.io/component-base/version
# Without these the binaries report v0.0.0-master, which breaks version-skew checks between
# kubelet and apiserver and confuses clients.
ldflags="-s -w -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"

mkdir -p "$bindir"
tmp="$(mktemp -d "$cache/k8s/build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

targets=()
for c in "${cmds[@]}"; do targets+=("k8s.io/kubernetes/cmd/$c"); done

echo "build-k8s: compiling Kubernetes $version (${cmds[*]}) with $(go version | cut -d' ' -f3);" \
  "the first build takes a while" >&2
start=$(date +%s)
# One `go build` for all commands shares the compilation of common packages. -p=2 matches
# the small CI machines and keeps peak memory moderate; CGO is off as upstream builds these
# commands statically (kubelet works without cgo on Linux).
(
  cd "$moddir"
  CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--p=2}" go build -trimpath -ldflags="$ldflags" \
    -o "$tmp/" "${targets[@]}"
)
for c in "${cmds[@]}"; do mv -f "$tmp/$c" "$bindir/$c"; done
echo "$want" > "$stamp"
echo "build-k8s: built in $(( $(date +%s) - start ))s into $bindir" >&2
echo "$bindir"
