#!/usr/bin/env bash
# Regenerates the wrapper go.mod/go.sum files under testbed/go/ from the pinned
# versions. The Kubernetes wrapper's replace lines are derived from the release's
# own go.mod: every "k8s.io/X => ./staging/src/k8s.io/X" becomes "k8s.io/X => k8s.io/X v0.MINOR.PATCH".
# Run by hand when bumping versions; the generated files are committed so that
# builds are pinned by go.sum and never need the checksum database.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
export GOFLAGS=-mod=mod GOSUMDB=off GOTOOLCHAIN=local

staging_version="v0.${KUBE_VERSION#v1.}"

# --- kube ---
kube_gomod=$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
cd "$here/go/kube"
rm -f go.mod go.sum
{
  echo "module meetscale.local/testbed/kube"
  echo
  grep -E '^go [0-9]' "$kube_gomod"
  echo
  echo "require k8s.io/kubernetes ${KUBE_VERSION}"
  echo
  echo "replace ("
  grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging/src/' "$kube_gomod" \
    | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  go get -tool "k8s.io/kubernetes/cmd/${cmd}@${KUBE_VERSION}"
done
go mod edit -go=1.26.0 && go mod tidy

# --- etcd (server module, with a three-line main in this repo) ---
cd "$here/go/etcd"
rm -f go.mod go.sum
go mod init meetscale.local/testbed/etcd
go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}"
go mod edit -go=1.26.0 && go mod tidy

# --- kwok ---
cd "$here/go/kwok"
rm -f go.mod go.sum
go mod init meetscale.local/testbed/kwok
go get -tool "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
go mod edit -go=1.26.0 && go mod tidy

# --- helm ---
cd "$here/go/helm"
rm -f go.mod go.sum
go mod init meetscale.local/testbed/helm
go get -tool "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
go mod edit -go=1.26.0 && go mod tidy
echo "wrapper modules regenerated"
