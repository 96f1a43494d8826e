package processors

// The bindings of a Runtime to its group and its processor, each made
// once (see Runtime): the group owns its runtime.

import (
	"fmt"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/statestore"
)

// binding is what NewProcessor binds a Runtime to: the processor's group
// table (nil fields for a group without a table).
type binding struct {
	// previous finds the value a redelivered record was first applied to.
	previous func(key string, id statestore.SourceOffset) (*Stored, []statestore.SourceOffset, bool)
	// scan reads a partition of the group table: it returns the identity
	// of the partition's store and a function that visits every key.
	scan func(partition int32) (any, func(func(key string, v *Stored) error) error)
	// partitions are the partition counts of the input streams, to reject
	// records whose key is in another partition than goka puts it.
	partitions map[string]int32
	// cache is the group table's record cache (nil: none, or turned off
	// by WithRecordCache).
	cache *recordCache
}

// defineGroup binds rt to group (DefineGroup). Defining the same group
// again (with or without a table alike) changes nothing; a conflicting
// definition is recorded as rt's misuse, which its callbacks and
// NewProcessor fail with.
func (rt *Runtime) defineGroup(group goka.Group, stateful bool) {
	rt.bindMu.Lock()
	defer rt.bindMu.Unlock()
	switch {
	case rt.group == "":
		rt.group, rt.stateful = group, stateful
	case rt.group != group:
		rt.misused(fmt.Errorf("processors.DefineGroup: a Runtime serves one group, and this one was given for group %s and then for %s: "+
			"make one Runtime per group (processors.NewRuntime)", rt.group, group))
	case rt.stateful != stateful:
		rt.misused(fmt.Errorf("processors.DefineGroup: group %s was defined twice with one Runtime, with and without a table: "+
			"make one Runtime per definition (processors.NewRuntime)", group))
	}
}

// misused records err as rt's misuse unless one is recorded already.
// bindMu is held.
func (rt *Runtime) misused(err error) { rt.misuse.CompareAndSwap(nil, &err) }

// bindable returns why rt cannot be bound to the processor of group, or
// nil. NewProcessor asks before it connects, and bind again when it binds.
func (rt *Runtime) bindable(group goka.Group) error {
	rt.bindMu.Lock()
	defer rt.bindMu.Unlock()
	return rt.bindableLocked(group)
}

func (rt *Runtime) bindableLocked(group goka.Group) error {
	switch {
	case rt.misuse.Load() != nil:
		return *rt.misuse.Load()
	case rt.bound:
		return fmt.Errorf("processors.WithRuntime: the Runtime given for group %s is the runtime of the processor of group %s already "+
			"(until its Run returns): make one Runtime per processor (processors.NewRuntime)", group, rt.group)
	case rt.group == "":
		return fmt.Errorf("processors.WithRuntime: the Runtime given for group %s was not given to processors.DefineGroup: "+
			"define the group with it", group)
	case rt.group != group:
		return fmt.Errorf("processors.WithRuntime: the Runtime given for group %s is the runtime of group %s (processors.DefineGroup): "+
			"give each processor the Runtime its group was defined with", group, rt.group)
	}
	return nil
}

// unbind releases rt from its processor, whose Run returned: a new
// processor of the same group (a restart) may bind it again.
func (rt *Runtime) unbind() {
	rt.bindMu.Lock()
	defer rt.bindMu.Unlock()
	rt.bound = false
}

// bind binds rt to the processor of group, once while that one runs.
func (rt *Runtime) bind(group goka.Group, b binding) error {
	rt.bindMu.Lock()
	defer rt.bindMu.Unlock()
	if err := rt.bindableLocked(group); err != nil {
		return err
	}
	rt.bound = true
	rt.binding = b
	return nil
}
