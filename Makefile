# Convenience targets; the README's test command (scripts/test.sh) is what CI runs.
.PHONY: build test robustness robustness-long bench proto

build:
	go build -o cairn ./cmd/cairn

test:
	./scripts/test.sh

# The fault-injection suite, each scenario once (also part of scripts/test.sh).
robustness:
	go test -tags failpoints -count=1 -timeout 15m -v ./tests/robustness/ -run 'TestFaults|TestMutant|TestUnavailability'

# A random schedule of faults: make robustness-long SEED=7 DURATION=30m
SEED ?= 1
DURATION ?= 30m
robustness-long:
	ROBUSTNESS_SEED=$(SEED) ROBUSTNESS_DURATION=$(DURATION) go test -tags failpoints -count=1 -timeout 0 -v ./tests/robustness/ -run TestLong

# Cairn against etcd, 3-member clusters, same machine: see BENCHMARKS.md.
bench:
	go build -o /tmp/cairn ./cmd/cairn && scripts/build-etcd.sh >/dev/null && go run ./bench/cmd/compare -cairn /tmp/cairn -rounds 2

# Regenerate api/cairnpb from its .proto (needs protoc, protoc-gen-go, protoc-gen-go-grpc).
proto:
	protoc --proto_path=api/cairnpb --go_out=api/cairnpb --go_opt=paths=source_relative \
		--go-grpc_out=api/cairnpb --go-grpc_opt=paths=source_relative api/cairnpb/cairn.proto
