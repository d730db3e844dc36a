// Package fleetpb is the generated protobuf and gRPC code of the report
// stream (fleet.proto). Regenerate with `go generate ./fleet/fleetpb`
// (protoc, protoc-gen-go and protoc-gen-go-grpc); the generated files are
// committed so that building needs none of them.
package fleetpb

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative fleet.proto
