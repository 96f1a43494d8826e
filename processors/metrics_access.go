package processors

import (
	"fmt"

	"github.com/lovoo/goka"
)

// Group returns the processor's consumer group.
func (p *Processor) Group() goka.Group { return p.graph.Group() }

// Tally returns the counts of the runtime the processor runs with
// (WithRuntime), or nil without one.
func (p *Processor) Tally() *Tally {
	if p.cfg.runtime == nil {
		return nil
	}
	return p.cfg.runtime.Tally()
}

// CacheFlushes returns how many times the record cache of the group table
// has flushed to the store and changelog (0 without a record cache).
func (p *Processor) CacheFlushes() int64 {
	if p.cache == nil {
		return 0
	}
	return p.cache.flushes.Load()
}

// Ready returns nil while the processor processes: its consumer group's
// join is complete, so it holds a current assignment (possibly of no
// partition, when the group has more members than partitions), and every
// partition assigned to it is restored (its group table, joins and the
// tables it looks up caught up). Otherwise the error says why not, in one
// sentence: not started yet, joining the group, restoring the partitions
// assigned, rebalancing (its partitions revoked, rejoining), or stopped
// (Run returned, or it reconnects to a lost cluster). A readiness probe
// (the query API's /readyz) asks it; it costs a few lock acquisitions.
func (p *Processor) Ready() error {
	gp, group := p.Goka(), p.graph.Group()
	select {
	case <-gp.Done():
		return fmt.Errorf("group %s is not running: it stopped, or it reconnects to the Kafka cluster", group)
	default:
	}
	switch st := gp.StateReader().State(); st {
	case goka.ProcStateRunning:
	case goka.ProcStateIdle:
		return fmt.Errorf("group %s has not started yet", group)
	case goka.ProcStateStarting:
		// (after the tables it looks up have caught up)
		return fmt.Errorf("group %s is joining its consumer group: no partitions assigned yet", group)
	case goka.ProcStateSetup:
		return fmt.Errorf("group %s is restoring the partitions assigned to it", group)
	case goka.ProcStateStopping, goka.ProcStateStopped:
		return fmt.Errorf("group %s is rebalancing: its partitions are revoked and it rejoins its consumer group", group)
	default:
		return fmt.Errorf("group %s is in goka state %d, not running", group, st)
	}
	if p.graph.GroupTable() == nil {
		return nil
	}
	var open, restoring int
	for _, st := range p.builder.Stores(string(goka.GroupTable(group))) {
		if st.IsOpen() {
			open++
			if st.Recovering() {
				restoring++
			}
		}
	}
	if restoring > 0 {
		return fmt.Errorf("group %s is restoring: %d of %d assigned partitions ready", group, open-restoring, open)
	}
	return nil
}
