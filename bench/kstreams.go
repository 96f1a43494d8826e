package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// kstreamsJar is the shaded jar `mvn package` builds in the peer's directory.
const kstreamsJar = "target/weft-bench-kafka-streams.jar"

// kstreamsStore is the name of the workload's store in the Java peer, hence
// its changelog topic <app>-<store>-changelog.
var kstreamsStore = map[string]string{workloadCount: "counts", workloadBank: "balances", workloadJoin: "totals", workloadWindow: "window-counts"}

// buildKStreams builds the Kafka Streams peer in dir with Maven unless its
// jar is newer than its pom and sources, and returns the jar's path. When
// Java or Maven is missing it returns why the peer cannot run (skip); a
// failed build is an error.
func buildKStreams(ctx context.Context, dir string) (jar, skip string, err error) {
	if _, err := exec.LookPath("java"); err != nil {
		return "", "java is not installed (Java 17+ is needed)", nil
	}
	jar = filepath.Join(dir, kstreamsJar)
	if fresh(jar, dir) {
		return jar, "", nil
	}
	if _, err := exec.LookPath("mvn"); err != nil {
		return "", fmt.Sprintf("mvn is not installed and %s is not built", jar), nil
	}
	cmd := exec.CommandContext(ctx, "mvn", "-q", "-B", "-Dstyle.color=never", "-f", filepath.Join(dir, "pom.xml"), "package")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", "", fmt.Errorf("build the Kafka Streams peer: mvn package in %s: %w%s", dir, err, tail(out))
	}
	if _, err := os.Stat(jar); err != nil {
		return "", "", fmt.Errorf("build the Kafka Streams peer: mvn package in %s built no %s", dir, kstreamsJar)
	}
	return jar, "", nil
}

// fresh reports whether jar exists and is newer than dir's pom.xml and
// every file under dir/src.
func fresh(jar, dir string) bool {
	st, err := os.Stat(jar)
	if err != nil {
		return false
	}
	newer := false
	check := func(p string) {
		if s, err := os.Stat(p); err == nil && s.ModTime().After(st.ModTime()) {
			newer = true
		}
	}
	check(filepath.Join(dir, "pom.xml"))
	_ = filepath.WalkDir(filepath.Join(dir, "src"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			check(p)
		}
		return nil
	})
	return !newer
}

// kstreamsCmd is the command that runs the Kafka Streams peer: the JVM's
// default settings, its logs at warn on stderr.
func kstreamsCmd(ctx context.Context, jar string, spec childSpec) *exec.Cmd {
	args := []string{"-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-jar", jar,
		spec.Workload, strings.Join(spec.Brokers, ","), spec.App, spec.Input, strconv.Itoa(spec.Events), spec.StateDir}
	if spec.Workload == workloadJoin {
		args = append(args, spec.Customers)
	}
	return exec.CommandContext(ctx, "java", args...)
}

// kstreamsWindowKey turns the key of a record of Kafka Streams' window
// store changelog (the record key, the window start as 8 bytes big endian
// milliseconds, a 4-byte sequence number) into key@<window start>, the
// form of the other engines' windowed tables.
func kstreamsWindowKey(raw string) (string, error) {
	if len(raw) < 12 {
		return "", fmt.Errorf("window store key %q: %d bytes, want at least 12", raw, len(raw))
	}
	start := int64(binary.BigEndian.Uint64([]byte(raw[len(raw)-12 : len(raw)-4])))
	return raw[:len(raw)-12] + "@" + time.UnixMilli(start).UTC().Format(time.RFC3339), nil
}

// kstreamsTable is the changelog topic of the peer's store.
func kstreamsTable(app, workload string) string {
	return app + "-" + kstreamsStore[workload] + "-changelog"
}
