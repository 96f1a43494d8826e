package processors_test

import (
	"context"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
)

// runOnTester runs a processor of g on goka's tester until the test ends
// and returns the tester.
func runOnTester(t *testing.T, g *goka.GroupGraph) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	p, err := goka.NewProcessor(nil, g, goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go p.Run(ctx)
	return tt
}
