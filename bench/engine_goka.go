package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
)

// gokaOptions are plain goka's defaults (goka.DefaultConfig, the LevelDB
// storage of storage.DefaultBuilder) with the two settings a goka user
// needs here: streams read from the oldest offset (goka's default is the
// newest, which would skip the pre-produced input) and topics created with
// one replica (the broker has one node; goka's default is 2).
func gokaOptions(stateDir string) []goka.ProcessorOption {
	cfg := goka.DefaultConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	tm := goka.NewTopicManagerConfig()
	tm.Table.Replication = 1
	tm.Stream.Replication = 1
	// A copy of the config per builder, as goka's default builders copy
	// its global config: the consumer group builder sets the ClientID of
	// the config it is given while a lookup table's consumer, built from
	// the other builder, reads it (a data race under -race).
	cg, sc, pc := *cfg, *cfg, *cfg
	return []goka.ProcessorOption{
		goka.WithStorageBuilder(storage.DefaultBuilder(filepath.Join(stateDir, "goka"))),
		goka.WithConsumerGroupBuilder(goka.ConsumerGroupBuilderWithConfig(&cg)),
		goka.WithConsumerSaramaBuilder(goka.SaramaConsumerBuilderWithConfig(&sc)),
		goka.WithProducerBuilder(goka.ProducerBuilderWithConfig(&pc)),
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithConfig(cfg, tm)),
	}
}

// runGoka runs the workload as a plain goka processor.
func runGoka(ctx context.Context, s childSpec, timeout time.Duration) (childResult, error) {
	group := goka.Group(s.App)
	var seen, rejected atomic.Int64
	var edges []goka.Edge
	var table goka.Codec
	switch s.Workload {
	case workloadCount:
		table = new(codec.Int64)
		edges = append(edges, goka.Input(goka.Stream(s.Input), new(codec.Bytes), func(ctx goka.Context, _ any) {
			var n int64
			if v := ctx.Value(); v != nil {
				n = v.(int64)
			}
			ctx.SetValue(n + 1)
			seen.Add(1)
		}))
	case workloadBank:
		table = jsonCodec[bankAccount]{}
		edges = append(edges, goka.Input(goka.Stream(s.Input), jsonCodec[bankEvent]{}, func(ctx goka.Context, msg any) {
			cur, _ := ctx.Value().(*bankAccount)
			next, err := applyBank(ctx.Key(), msg.(*bankEvent), cur)
			if err != nil {
				rejected.Add(1) // the rules: a rejected event changes no state
			} else {
				ctx.SetValue(next)
			}
			seen.Add(1)
		}))
	case workloadJoin:
		// The customer table looked up by key, as weft's stream-table
		// join does (a goka.Lookup edge).
		customers := goka.Table(s.Customers)
		table = jsonCodec[customerTotal]{}
		edges = append(edges, goka.Lookup(customers, jsonCodec[customer]{}),
			goka.Input(goka.Stream(s.Input), jsonCodec[order]{}, func(ctx goka.Context, msg any) {
				c, _ := ctx.Lookup(customers, ctx.Key()).(*customer)
				e, err := joinOrder(msg.(*order), c)
				if err != nil {
					rejected.Add(1)
				} else {
					cur, _ := ctx.Value().(*customerTotal)
					ctx.SetValue(addOrder(cur, e))
				}
				seen.Add(1)
			}))
	case workloadWindow:
		// goka has no windows: the input callback re-keys each record by
		// key and window through the group's loopback topic (weft goes
		// through a repartition topic keyed by window likewise), whose
		// callback counts: the table is keyed by key@window start.
		table = new(codec.Int64)
		edges = append(edges,
			goka.Input(goka.Stream(s.Input), jsonCodec[windowEvent]{}, func(ctx goka.Context, msg any) {
				e := msg.(*windowEvent)
				ctx.Loopback(windowTableKey(ctx.Key(), e.TS), e)
			}),
			goka.Loop(jsonCodec[windowEvent]{}, func(ctx goka.Context, _ any) {
				var n int64
				if v := ctx.Value(); v != nil {
					n = v.(int64)
				}
				ctx.SetValue(n + 1)
				seen.Add(1)
			}))
	default:
		return childResult{}, fmt.Errorf("goka: no workload %q", s.Workload)
	}
	graph := goka.DefineGroup(group, append(edges, goka.Persist(table))...)

	start := time.Now()
	p, err := goka.NewProcessor(s.Brokers, graph, gokaOptions(s.StateDir)...)
	if err != nil {
		return childResult{}, fmt.Errorf("goka: %w", err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- p.Run(runCtx) }()
	if err := waitFor(seen.Load, int64(s.Events), done, timeout); err != nil {
		stop()
		return childResult{}, fmt.Errorf("goka: %w", err)
	}
	allSeen := time.Now()
	stop()
	if err := <-done; err != nil {
		return childResult{}, fmt.Errorf("goka: stop processor: %w", err)
	}
	res := childResult{
		Seen: seen.Load(), Rejected: rejected.Load(), Table: string(goka.GroupTable(group)),
		RunNanos: int64(allSeen.Sub(start)), StopNs: int64(time.Since(allSeen)),
	}
	if res.Seen != int64(s.Events) {
		return res, fmt.Errorf("goka: %d callbacks for %d records", res.Seen, s.Events)
	}
	return res, nil
}

// jsonCodec is a goka codec of *T in JSON, as goka users write one.
type jsonCodec[T any] struct{}

func (jsonCodec[T]) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (jsonCodec[T]) Decode(data []byte) (any, error) {
	v := new(T)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, err
	}
	return v, nil
}

// bankEvent is one event of testdata/bank/events.jsonl.
type bankEvent struct {
	Type    string `json:"type"`
	Account string `json:"account"`
	Owner   string `json:"owner"`
	Amount  *int64 `json:"amount"`
}

// applyBank folds one event into an account (nil: none yet) by the rules of
// testdata/cqrs/bank.yaml, in their order; an error is a rejection.
func applyBank(key string, v *bankEvent, cur *bankAccount) (*bankAccount, error) {
	switch v.Type {
	case "AccountCreated", "Deposited", "Withdrawn", "Closed":
	default:
		return nil, errors.New("2: unknown event type")
	}
	if v.Account == "" {
		return nil, errors.New("3: missing account")
	}
	if v.Account != key {
		return nil, errors.New("the account does not match the record key")
	}
	if v.Type == "AccountCreated" {
		if cur != nil {
			return nil, errors.New("4: account already exists")
		}
		return &bankAccount{Account: v.Account, Owner: v.Owner, Status: "open", Events: 1}, nil
	}
	if cur == nil {
		return nil, errors.New("5: unknown account")
	}
	if cur.Status == "closed" {
		return nil, errors.New("6: account closed")
	}
	next := *cur
	next.Events++
	if v.Type == "Closed" {
		next.Status = "closed"
		return &next, nil
	}
	if v.Amount == nil || *v.Amount <= 0 {
		return nil, errors.New("7: bad amount")
	}
	if v.Type == "Withdrawn" {
		if *v.Amount > cur.Balance {
			return nil, errors.New("8: insufficient funds")
		}
		next.Balance -= *v.Amount
	} else {
		next.Balance += *v.Amount
	}
	return &next, nil
}
