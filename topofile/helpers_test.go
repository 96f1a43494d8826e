package topofile_test

import (
	"context"
	"testing"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/weftstream/weft/topology"
)

// runOnTester runs every group of c on a new goka tester until the test
// ends (the same helper as topology's tests).
func runOnTester(t *testing.T, c *topology.Compiled) *tester.Tester {
	t.Helper()
	tt := tester.New(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	for _, g := range c.Groups {
		p, err := goka.NewProcessor(nil, g.Graph, append(g.GokaOptions, goka.WithTester(tt))...)
		if err != nil {
			t.Fatal(err)
		}
		go p.Run(ctx)
	}
	return tt
}
