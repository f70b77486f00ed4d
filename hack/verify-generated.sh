#!/usr/bin/env bash
# Fails when deepcopy code, CRDs, RBAC, the chart's README or the reference tables of
# docs/operations.md are not what `make generate manifests` produces
# from the current sources. It regenerates in a scratch copy, so the work tree is untouched.
set -euo pipefail
: "${CONTROLLER_GEN:?set CONTROLLER_GEN to the controller-gen binary}"
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/vigil-verify-XXXXXX")
trap 'rm -rf "$scratch"' EXIT

tar -C "$root" --exclude=./.git --exclude=./bin -cf - . | tar -C "$scratch" -xf -
(cd "$scratch" && make -s generate manifests CONTROLLER_GEN="$CONTROLLER_GEN" >/dev/null)

stale=0
for dir in api config charts docs; do
  if ! diff -r -q "$root/$dir" "$scratch/$dir" >/dev/null; then
    diff -r -u "$root/$dir" "$scratch/$dir" | head -40 || true
    stale=1
  fi
done
if [[ $stale -ne 0 ]]; then
  echo "generated files are stale: run 'make generate manifests' and commit the result" >&2
  exit 1
fi
echo "generated files are up to date"
