package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Every topology file in testdata with test cases beside it passes
// 'weft test' as the README and the files' comments say.
func TestTestdataTopologiesPassTheirTests(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("..", "..", "testdata", "*", "*.test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 2 {
		t.Fatalf("found %d test files in testdata, want the shop and cqrs ones", len(cases))
	}
	for _, c := range cases {
		file := strings.TrimSuffix(c, ".test.yaml") + ".yaml"
		if _, err := os.Stat(file); err != nil {
			t.Errorf("%s has no topology file %s beside it", c, file)
			continue
		}
		t.Run(filepath.Base(file), func(t *testing.T) {
			out, err := weft(t.Context(), "test", file)
			if err != nil || !strings.Contains(out, " 0 failed") {
				t.Fatalf("weft test %s: %v\n%s", file, err, out)
			}
		})
	}
}
