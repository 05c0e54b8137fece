#!/usr/bin/env bash
# Build meshcheck when its sources changed and print the binary's path.
#
# The binary lives outside the repository, keyed by a hash of go.mod, go.sum and *.go:
#   ${SERVICEMESH_EGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/servicemesh-egress}/meshcheck/<hash>/meshcheck
# A cold build compiles Istio's control plane (several minutes on 2 cores); later runs reuse it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SERVICEMESH_EGRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/servicemesh-egress}
hash=$(cd "$here" && for f in go.mod go.sum $(LC_ALL=C ls ./*.go); do printf '== %s\n' "${f#./}"; cat "$f"; done | sha256sum | cut -c1-16)
out=$cache/meshcheck/$hash/meshcheck
if [[ ! -x $out ]]; then
  command -v go >/dev/null || { echo "meshcheck: Go is not installed (needed to build meshcheck)" >&2; exit 1; }
  mkdir -p "$(dirname "$out")"
  tmp=$(mktemp "$out.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  echo "meshcheck: building $out (Istio's config generator; the first build takes several minutes)" >&2
  start=$SECONDS
  (cd "$here" && CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -trimpath -o "$tmp" .) >&2
  mv -f "$tmp" "$out"
  trap - EXIT
  echo "meshcheck: built in $((SECONDS - start))s" >&2
fi
echo "$out"
