package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/lovoo/goka/codec"

	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
)

// maxReported is how many wrong keys a failed verification lists.
const maxReported = 10

// expectation is the independent fold of a workload's input.
type expectation struct {
	counts map[string]int64         // count: records per key; window: per key@window start
	join   map[string]customerTotal // join: the total of every customer with orders
	bank   bankInput                // bank: the accounts every copy must end with
}

// decodeCount decodes a count of the engine's table.
func decodeCount(engine string, data []byte) (int64, error) {
	switch engine {
	case engineGoka:
		v, err := new(codec.Int64).Decode(data)
		if err != nil {
			return 0, err
		}
		return v.(int64), nil
	case engineKStreams: // Serdes.Long: 8 bytes, big endian
		if len(data) != 8 {
			return 0, fmt.Errorf("%d bytes, want 8", len(data))
		}
		return int64(binary.BigEndian.Uint64(data)), nil
	}
	v, err := processors.EnvelopeCodec(new(codec.Int64)).Decode(data)
	if err != nil {
		return 0, err
	}
	n, ok := v.(*processors.Stored).Value.(int64)
	if !ok {
		return 0, fmt.Errorf("value %T, want int64", v.(*processors.Stored).Value)
	}
	return n, nil
}

// decodeAccount decodes an account of the engine's bank table.
func decodeAccount(engine string, data []byte) (bankAccount, error) {
	var a bankAccount
	switch engine {
	case engineGoka, engineKStreams:
		err := json.Unmarshal(data, &a)
		return a, err
	}
	v, err := processors.EnvelopeCodec(topology.JSON{}).Decode(data)
	if err != nil {
		return a, err
	}
	m, ok := v.(*processors.Stored).Value.(map[string]any)
	if !ok {
		return a, fmt.Errorf("value %T, want a JSON object", v.(*processors.Stored).Value)
	}
	var ok1, ok2, ok3, ok4, ok5 bool
	a.Account, ok1 = m["account"].(string)
	a.Owner, ok2 = m["owner"].(string)
	a.Balance, ok3 = m["balance"].(int64)
	a.Status, ok4 = m["status"].(string)
	a.Events, ok5 = m["events"].(int64)
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || len(m) != 5 {
		return a, fmt.Errorf("value %v is not an account", m)
	}
	return a, nil
}

// decodeJoinTotal decodes a customer's total of the engine's join table.
func decodeJoinTotal(engine string, data []byte) (customerTotal, error) {
	if engine == engineGoka || engine == engineKStreams {
		return decodeTotal(data)
	}
	v, err := processors.EnvelopeCodec(jsonCodec[customerTotal]{}).Decode(data)
	if err != nil {
		return customerTotal{}, err
	}
	t, ok := v.(*processors.Stored).Value.(*customerTotal)
	if !ok || t == nil {
		return customerTotal{}, fmt.Errorf("value %T, want a customer total", v.(*processors.Stored).Value)
	}
	return *t, nil
}

// verifyTable checks an engine's table, read back from its changelog,
// against the independent fold of the input: every key's count and the
// total (count), every account of every copy (bank), and no other key.
func verifyTable(engine, workload string, tab changelog, want expectation, events int) error {
	var errs []error
	add := func(err error) {
		if len(errs) < maxReported {
			errs = append(errs, err)
		}
	}
	if engine == engineKStreams && workload == workloadWindow {
		keyed := changelog{latest: make(map[string][]byte, len(tab.latest))}
		for raw, v := range tab.latest {
			k, err := kstreamsWindowKey(raw)
			if err != nil {
				return fmt.Errorf("%s: wrong table: %w", engine, err)
			}
			keyed.latest[k] = v
		}
		tab = keyed
	}
	switch workload {
	case workloadCount, workloadWindow:
		var sum int64
		for key, n := range want.counts {
			data, ok := tab.latest[key]
			if !ok {
				add(fmt.Errorf("key %s: missing, produced %d", key, n))
				continue
			}
			got, err := decodeCount(engine, data)
			if err != nil {
				add(fmt.Errorf("key %s: %w", key, err))
				continue
			}
			sum += got
			if got != n {
				add(fmt.Errorf("key %s: count %d, produced %d", key, got, n))
			}
		}
		if sum != int64(events) && len(errs) == 0 {
			add(fmt.Errorf("sum of counts %d, want %d", sum, events))
		}
		if len(tab.latest) != len(want.counts) {
			add(fmt.Errorf("%d keys in the table, %d produced", len(tab.latest), len(want.counts)))
		}
	case workloadBank:
		n := 0
		var applied int64
		for c := range want.bank.copies {
			for _, w := range want.bank.expected {
				n++
				id := copyAccount(w.Account, c)
				data, ok := tab.latest[id]
				if !ok {
					add(fmt.Errorf("account %s: missing", id))
					continue
				}
				got, err := decodeAccount(engine, data)
				if err != nil {
					add(fmt.Errorf("account %s: %w", id, err))
					continue
				}
				w.Account = id
				applied += got.Events
				if got != w {
					add(fmt.Errorf("account %s = %+v, want %+v", id, got, w))
				}
			}
		}
		if applied != int64(events) && len(errs) == 0 {
			add(fmt.Errorf("the accounts count %d applied events, want %d", applied, events))
		}
		if len(tab.latest) != n {
			add(fmt.Errorf("%d keys in the table, %d accounts expected", len(tab.latest), n))
		}
	case workloadJoin:
		var orders int64
		for key, w := range want.join {
			data, ok := tab.latest[key]
			if !ok {
				add(fmt.Errorf("customer %s: missing, %d orders produced", key, w.Orders))
				continue
			}
			got, err := decodeJoinTotal(engine, data)
			if err != nil {
				add(fmt.Errorf("customer %s: %w", key, err))
				continue
			}
			orders += got.Orders
			if got != w {
				add(fmt.Errorf("customer %s = %+v, want %+v", key, got, w))
			}
		}
		if orders != int64(events) && len(errs) == 0 {
			add(fmt.Errorf("the customers count %d orders, want %d", orders, events))
		}
		if len(tab.latest) != len(want.join) {
			add(fmt.Errorf("%d keys in the table, %d customers with orders", len(tab.latest), len(want.join)))
		}
	default:
		return fmt.Errorf("no verification for workload %q", workload)
	}
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return fmt.Errorf("%s: wrong table:\n%w", engine, errors.Join(errs...))
	}
	return nil
}
