#!/usr/bin/env bash
# Installs every tool Vigil's build, tests and lab need, pinned, into a cache outside the repo:
#   ${VIGIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil}
#
# kube-apiserver and kubectl are built from the k8s.io/kubernetes Go module and etcd from
# go.etcd.io/etcd/server/v3; everything comes from the Go module proxy, nothing else is
# downloaded. Each step prints one line with the time it took; a failing step is named.
#
# Usage: hack/tools.sh install        build whatever is missing
#        hack/tools.sh assets-path    print the directory with etcd, kube-apiserver, kubectl
#        hack/tools.sh bin-path       print the directory with controller-gen, helm, kubeconform,
#                                     helm-docs, promtool
#        hack/tools.sh crds-path      print the directory with the prometheus-operator CRDs
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
KUBE_STAGING_VERSION=${KUBE_STAGING_VERSION:-v0.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.23.0}
HELM_VERSION=${HELM_VERSION:-v3.22.0}
HELM_KUBE_MINOR=${HELM_KUBE_MINOR:-37} # the minor version of helm's client-go
KUBECONFORM_VERSION=${KUBECONFORM_VERSION:-v0.8.0}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
HELM_DOCS_VERSION=${HELM_DOCS_VERSION:-v1.14.2}
CRD_REF_DOCS_VERSION=${CRD_REF_DOCS_VERSION:-v0.3.0}
# promtool comes from the Prometheus Go module, whose v0.3xx versions are Prometheus 3.x.
PROMETHEUS_MODULE_VERSION=${PROMETHEUS_MODULE_VERSION:-v0.316.0}
# The ServiceMonitor and PrometheusRule CRDs, from the prometheus-operator Go module, so
# that the chart's optional objects are validated too.
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}

CACHE=${VIGIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil}
# "-stamped": builds before version stamping reported v0.0.0-master; they are not reused.
ASSETS_DIR=$CACHE/assets/kube-$KUBE_VERSION-stamped-etcd-$ETCD_VERSION
BIN_DIR=$CACHE/bin
CRDS_DIR=$CACHE/crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION

log() { printf '[tools] %s\n' "$*" >&2; }
die() { printf '[tools] FAILED: %s\n' "$*" >&2; exit 1; }

# step NAME OUTPUT CMD...: runs CMD unless OUTPUT exists, timing it and naming it on failure.
step() {
  local name=$1 out=$2; shift 2
  if [[ -x $out ]]; then
    log "$name: cached at $out"
    return 0
  fi
  local start=$SECONDS logfile
  logfile=$(mktemp "${TMPDIR:-/tmp}/vigil-tools-XXXXXX.log")
  log "$name: building (this can take several minutes the first time)..."
  # errexit is ignored inside an `if` or `||`, so run the step in a subshell of its own.
  local rc
  set +e
  (set -e; "$@") >"$logfile" 2>&1
  rc=$?
  set -e
  if [[ $rc -ne 0 ]]; then
    tail -n 40 "$logfile" >&2
    die "step '$name' failed after $((SECONDS - start))s (full log: $logfile)"
  fi
  rm -f "$logfile"
  [[ -x $out ]] || die "step '$name' finished but $out is missing"
  log "$name: done in $((SECONDS - start))s"
}

# kube_version_ldflags prints the -X flags that stamp $KUBE_VERSION into the server's and
# the client's version packages.
kube_version_ldflags() {
  local v=${KUBE_VERSION#v} pkg flags=""
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    flags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    flags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$flags"
}

# A throwaway module that requires k8s.io/kubernetes; its go.mod replaces every staging module
# with ./staging/src/..., which does not work outside its repo, so each one is replaced here by
# the published module at the matching version.
build_kube() (
  work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-kube-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  local kmod
  kmod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" \
    | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [[ -f $kmod ]] || { echo "cannot download k8s.io/kubernetes@$KUBE_VERSION go.mod"; return 1; }
  {
    echo "module vigil.dev/build/kube"
    echo "go 1.26"
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    grep -oE '^[[:space:]]*k8s\.io/[a-z0-9-]+ => \./staging/src/k8s\.io/[a-z0-9-]+' "$kmod" \
      | awk -v v="$KUBE_STAGING_VERSION" '{print "replace " $1 " => " $1 " " v}'
  } >"$work/go.mod"
  echo 'package tools; import (_ "k8s.io/kubernetes/cmd/kube-apiserver"; _ "k8s.io/kubernetes/cmd/kubectl")' >"$work/tools.go"
  cd "$work"
  GOFLAGS=-mod=mod go mod tidy
  # Stamp the version as Kubernetes' own build does (hack/lib/version.sh): without it the
  # server reports v0.0.0-master and `helm install` refuses the chart's kubeVersion.
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w $(kube_version_ldflags)" -o "$work/out/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
  mkdir -p "$ASSETS_DIR.tmp"
  mv "$work/out/kubectl" "$work/out/kube-apiserver" "$ASSETS_DIR.tmp/"
)

build_etcd() (
  work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-etcd-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  printf 'module vigil.dev/build/etcd\ngo 1.26\nrequire go.etcd.io/etcd/server/v3 %s\n' "$ETCD_VERSION" >"$work/go.mod"
  echo 'package tools; import _ "go.etcd.io/etcd/server/v3"' >"$work/tools.go"
  cd "$work"
  GOFLAGS=-mod=mod go mod tidy
  CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$work/etcd" go.etcd.io/etcd/server/v3
  mkdir -p "$ASSETS_DIR.tmp"
  mv "$work/etcd" "$ASSETS_DIR.tmp/etcd"
)

# go_install NAME PKG VERSION [LDFLAGS] [SUFFIX] [TAGS]: installs one Go tool as
# $BIN_DIR/NAME-VERSION[SUFFIX], linked as NAME by link_tool.
go_install() (
  name=$1 pkg=$2 version=$3 ldflags=${4:-} suffix=${5:-} tags=${6:-}
  work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-gobin-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  GOBIN=$work go install -tags="$tags" -ldflags="$ldflags" "$pkg@$version"
  mkdir -p "$BIN_DIR"
  mv "$work/$name" "$BIN_DIR/$name-$version$suffix"
)

# helm_ldflags stamps helm as its own Makefile does: its version, and the Kubernetes version
# of its client-go (v0.37 -> 1.37), which `helm template` assumes without --kube-version
# (unstamped, it assumes 1.20, and refuses charts that need a newer Kubernetes).
helm_ldflags() {
  local flags="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.metadata="
  for pkg in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$HELM_KUBE_MINOR"
  done
  echo "$flags"
}

link_tool() { ln -sf "$1-$2" "$BIN_DIR/$1"; }

# fetch_prometheus_operator_crds copies the ServiceMonitor and PrometheusRule CRDs out of the
# prometheus-operator module (its example/ directory ships them).
fetch_prometheus_operator_crds() (
  work=$(mktemp -d "${TMPDIR:-/tmp}/vigil-promop-XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cd "$work"
  dir=$(GOFLAGS=-mod=mod go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" \
    | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  mkdir -p "$CRDS_DIR"
  for kind in servicemonitors prometheusrules; do
    cp "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$CRDS_DIR/"
  done
  touch "$CRDS_DIR/.done"
  chmod +x "$CRDS_DIR/.done" # step checks an executable marker
)

# Debian packages the build, tests and lab need, as command:package pairs.
# prometheus runs in the lab and scrapes Vigil; ca-certificates is the image's CA bundle.
PACKAGES=(git:git flock:util-linux diff:diffutils tar:tar gcc:gcc ip:iproute2 nft:nftables keepalived:keepalived
  prometheus:prometheus /usr/sbin/update-ca-certificates:ca-certificates)

# ensure_packages installs the missing Debian packages with apt-get (root only).
ensure_packages() {
  local missing=() pair
  for pair in "${PACKAGES[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  [[ $(id -u) -eq 0 ]] || die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
  local start=$SECONDS
  log "apt packages ${missing[*]}: installing..."
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
    || die "step 'apt-get install ${missing[*]}' failed"
  log "apt packages ${missing[*]}: done in $((SECONDS - start))s"
}

install() {
  command -v go >/dev/null || die "Go is not installed (need Go 1.26+ on PATH)"
  ensure_packages
  local total=$SECONDS
  # One installer at a time per cache: parallel makes (or two checkouts) wait here.
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  log "cache: $CACHE"
  if [[ ! -x $ASSETS_DIR/kube-apiserver || ! -x $ASSETS_DIR/kubectl || ! -x $ASSETS_DIR/etcd ]]; then
    # Steps build into $ASSETS_DIR.tmp, which becomes $ASSETS_DIR only when complete; a
    # step finished before an interruption is kept.
    step "kube-apiserver+kubectl $KUBE_VERSION (from k8s.io/kubernetes)" "$ASSETS_DIR.tmp/kube-apiserver" build_kube
    step "etcd $ETCD_VERSION (from go.etcd.io/etcd/server/v3)" "$ASSETS_DIR.tmp/etcd" build_etcd
    mv "$ASSETS_DIR.tmp" "$ASSETS_DIR"
  else
    log "kube-apiserver, kubectl $KUBE_VERSION and etcd $ETCD_VERSION: cached at $ASSETS_DIR"
  fi
  step "controller-gen $CONTROLLER_TOOLS_VERSION" "$BIN_DIR/controller-gen-$CONTROLLER_TOOLS_VERSION" \
    go_install controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen "$CONTROLLER_TOOLS_VERSION"
  step "helm $HELM_VERSION" "$BIN_DIR/helm-$HELM_VERSION-k8s1.$HELM_KUBE_MINOR" \
    go_install helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION" "$(helm_ldflags)" "-k8s1.$HELM_KUBE_MINOR"
  step "kubeconform $KUBECONFORM_VERSION" "$BIN_DIR/kubeconform-$KUBECONFORM_VERSION" \
    go_install kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
  step "helm-docs $HELM_DOCS_VERSION" "$BIN_DIR/helm-docs-$HELM_DOCS_VERSION" \
    go_install helm-docs github.com/norwoodj/helm-docs/cmd/helm-docs "$HELM_DOCS_VERSION"
  step "crd-ref-docs $CRD_REF_DOCS_VERSION" "$BIN_DIR/crd-ref-docs-$CRD_REF_DOCS_VERSION" \
    go_install crd-ref-docs github.com/elastic/crd-ref-docs "$CRD_REF_DOCS_VERSION"
  # Without the service-discovery plugins (remove_all_sd), which `promtool check/test`
  # never use and which are most of its build time.
  step "promtool (github.com/prometheus/prometheus $PROMETHEUS_MODULE_VERSION)" "$BIN_DIR/promtool-$PROMETHEUS_MODULE_VERSION-nosd" \
    go_install promtool github.com/prometheus/prometheus/cmd/promtool "$PROMETHEUS_MODULE_VERSION" "-s -w" -nosd remove_all_sd
  step "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION" "$CRDS_DIR/.done" fetch_prometheus_operator_crds
  link_tool controller-gen "$CONTROLLER_TOOLS_VERSION"
  link_tool helm "$HELM_VERSION-k8s1.$HELM_KUBE_MINOR"
  link_tool kubeconform "$KUBECONFORM_VERSION"
  link_tool helm-docs "$HELM_DOCS_VERSION"
  link_tool crd-ref-docs "$CRD_REF_DOCS_VERSION"
  link_tool promtool "$PROMETHEUS_MODULE_VERSION-nosd"
  log "all tools ready in $((SECONDS - total))s"
}

# golangci-lint is optional: lint uses it when it installs, and says so when it does not.
install_lint() {
  mkdir -p "$CACHE"
  exec 9>"$CACHE/.lock"
  flock 9
  step "golangci-lint $GOLANGCI_LINT_VERSION" "$BIN_DIR/golangci-lint-$GOLANGCI_LINT_VERSION" \
    go_install golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
  link_tool golangci-lint "$GOLANGCI_LINT_VERSION"
}

case ${1:-install} in
  install) install ;;
  install-lint) install_lint ;;
  assets-path) echo "$ASSETS_DIR" ;;
  bin-path) echo "$BIN_DIR" ;;
  crds-path) echo "$CRDS_DIR" ;;
  *) die "unknown command '$1' (want install, install-lint, assets-path, bin-path or crds-path)" ;;
esac
