// Command bench runs weft and its peers on the same input, on one broker,
// in one run, verifies every engine's table against an independent fold of
// the input, and prints what each engine cost (see bench/README.md):
//
//	go run ./bench                                   # count, embedded broker
//	go run ./bench -workload bank -n 500000 -reps 3 -brokers 127.0.0.1:19092
//	go run ./bench -engines goka-leveldb,weft -json
//
// Every engine runs in a process of its own (the Go engines in this
// executable started again, Kafka Streams in a JVM), from nothing until it
// has applied every record and stopped cleanly; its wall clock, CPU time
// and peak RSS are those of that process. A wrong table fails the run
// (exit code 1).
//
// The package also holds weft's end-to-end benchmarks (go test -bench .),
// which run weft and its peers in the test process and report ratios.
package main

import (
	"fmt"
	"os"
)

func main() {
	if spec := os.Getenv(envChild); spec != "" {
		os.Exit(childMain(spec, os.Stdout))
	}
	code, err := harnessMain(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
	}
	os.Exit(code)
}
