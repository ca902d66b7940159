#!/usr/bin/env bash
# Builds the test bed's binaries (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, kwok, helm) from the Go module proxy, pinned by the
# committed go.mod/go.sum under testbed/go/, into a cache outside the repo:
#   ${MEETSCALE_CACHE:-~/.cache/meetscale}/bin/<key>/
# The key is the pinned versions plus a hash of the wrapper modules, so a bump
# builds a new directory and an unchanged tree reuses the old one.
# Prints the bin directory on stdout; progress goes to stderr.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${MEETSCALE_CACHE:-$HOME/.cache/meetscale}
modhash=$(cat "$here"/go/*/go.mod "$here"/go/*/go.sum "$here"/go/etcd/main.go "$here/build.sh" | sha256sum | cut -c1-12)
key="kube-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_${modhash}"
bin="$cache/bin/$key"
want=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

complete=1
for b in "${want[@]}"; do [ -x "$bin/$b" ] || complete=0; done
if [ "$complete" = 1 ]; then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is required (go1.26+)" >&2; exit 1; }
mkdir -p "$bin.partial"
# go.sum is committed and complete: no checksum-database look-ups are needed.
# GOSUMDB=off only matters if a module were missing from go.sum (then the
# build fails with -mod=readonly instead of trusting an unverified download).
export GOFLAGS="-mod=readonly -trimpath" GOSUMDB=off GOTOOLCHAIN=local CGO_ENABLED=0
start=$(date +%s)

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
kv=k8s.io/component-base/version
cv=k8s.io/client-go/pkg/version
ldflags="-s -w"
for p in $kv $cv; do
  ldflags+=" -X $p.gitVersion=${KUBE_VERSION} -X $p.gitMajor=1 -X $p.gitMinor=${minor}"
  ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
done

log() { echo "[build.sh $(( $(date +%s) - start ))s] $*" >&2; }

log "kubernetes ${KUBE_VERSION} -> $bin"
(cd "$here/go/kube" && go build -ldflags "$ldflags" -o "$bin.partial/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubectl) >&2
log "etcd ${ETCD_VERSION}"
(cd "$here/go/etcd" && go build -ldflags "-s -w" -o "$bin.partial/etcd" .) >&2
log "kwok ${KWOK_VERSION}"
(cd "$here/go/kwok" && go build -ldflags "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}" \
  -o "$bin.partial/kwok" sigs.k8s.io/kwok/cmd/kwok) >&2
log "helm ${HELM_VERSION}"
(cd "$here/go/helm" && go build -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION}" \
  -o "$bin.partial/helm" helm.sh/helm/v3/cmd/helm) >&2

rm -rf "$bin"
mv "$bin.partial" "$bin"
log "done"
echo "$bin"
