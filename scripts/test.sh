#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this script).
# Installs what it needs: etcd and etcdctl v3.7.3, built from their Go
# modules into ~/.cache/cairn (about a minute the first time), used by the
# differential and etcdctl tests.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build etcd/etcdctl for the compatibility tests"
export CAIRN_ETCD_DIR="$(scripts/build-etcd.sh)"

echo "== gofmt"
unformatted="$(gofmt -l ./cmd ./internal ./tests ./bench 2>/dev/null || true)"
if [[ -n "$unformatted" ]]; then
  echo "gofmt needed on:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...
go vet -tags failpoints ./...

echo "== unit and in-process tests (race detector)"
go test -race -count=1 -timeout 15m ./internal/... ./cmd/...

echo "== compatibility, crash and etcdctl tests (built binary, real processes)"
go test -count=1 -timeout 15m ./tests/compat/ ./tests/e2e/ ./tests/integration/

echo "== robustness: faults under load, linearizability, mutants (binary built with -tags failpoints)"
go test -tags failpoints -count=1 -timeout 15m ./tests/robustness/...
