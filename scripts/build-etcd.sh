#!/usr/bin/env bash
# Builds etcd and etcdctl (the version below) from their Go modules into a
# cache directory outside the repository, for the etcdctl compatibility tests
# and the benchmarks. Prints the directory holding bin/etcd and bin/etcdctl.
# Idempotent: a second run with the binaries present does nothing.
set -euo pipefail
ETCD_VERSION="${ETCD_VERSION:-v3.7.3}"
DIR="${CAIRN_ETCD_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cairn/etcd-$ETCD_VERSION}"
if [[ -x "$DIR/bin/etcd" && -x "$DIR/bin/etcdctl" ]]; then
  echo "$DIR"; exit 0
fi
mkdir -p "$DIR/src" "$DIR/bin"
cd "$DIR/src"
cat > go.mod <<EOM
module cairn-etcd-tools

go 1.26
EOM
cat > tools.go <<EOM
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/server/v3"
)
EOM
go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@$ETCD_VERSION" >&2
go mod tidy >&2
go build -o "$DIR/bin/etcd" go.etcd.io/etcd/server/v3 >&2
go build -o "$DIR/bin/etcdctl" go.etcd.io/etcd/etcdctl/v3 >&2
echo "$DIR"
