package topology

import (
	"context"
	"log/slog"

	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
)

// NewProcessors creates one processor per compiled group, with state
// under stateDir (processors/<group>/), as weft run, replay jobs and the
// tests run them; extra options go to every processor. Run them with
// processors.RunAll.
func NewProcessors(ctx context.Context, log *slog.Logger, k kafkaclient.Config, stateDir string, groups []*Group,
	extra ...processors.Option) ([]*processors.Processor, error) {
	procs := make([]*processors.Processor, 0, len(groups))
	for _, grp := range groups {
		opts := append([]processors.Option{processors.WithKafka(k), processors.WithStateDir(stateDir), processors.WithLogger(log)},
			grp.Options()...)
		opts = append(opts, extra...)
		p, err := processors.NewProcessor(ctx, grp.Graph, opts...)
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}
