// Package bank is the bank-account read model of the event-sourcing
// example: AccountCreated, Deposited, Withdrawn and Closed events (JSON,
// keyed by account) are projected into a table of accounts with their
// owner, balance, status and event count. It is weft's built-in job until
// topology files replace Go-coded topologies.
package bank

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/weftstream/weft/processors"
)

// Default names of the projection's topics and group.
const (
	DefaultInput = "bank-events"
	DefaultGroup = "bank-balances"
)

// Event types.
const (
	AccountCreated = "AccountCreated"
	Deposited      = "Deposited"
	Withdrawn      = "Withdrawn"
	Closed         = "Closed"
)

// Account statuses.
const (
	StatusOpen   = "open"
	StatusClosed = "closed"
)

// Event is one account event.
type Event struct {
	Type    string          `json:"type"`
	Account string          `json:"account"`
	Owner   string          `json:"owner,omitempty"`
	Amount  json.RawMessage `json:"amount,omitempty"`
	At      string          `json:"at,omitempty"`
}

// Account is the read model of one account.
type Account struct {
	Account   string    `json:"account"`
	Owner     string    `json:"owner"`
	Balance   int64     `json:"balance"`
	Status    string    `json:"status"`
	Events    int64     `json:"events"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// DecodeEvent parses one JSON event.
func DecodeEvent(data []byte) (*Event, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("event is not a JSON object")
	}
	var e Event
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("event is not valid JSON: %w", err)
	}
	return &e, nil
}

// amount returns the event's amount, which must be a positive JSON integer.
func (e *Event) amount() (int64, error) {
	raw := bytes.TrimSpace(e.Amount)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, processors.Reject("bad-amount", "%s without an amount", e.Type)
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, processors.Reject("bad-amount", "amount %s is not an integer", raw)
	}
	if n <= 0 {
		return 0, processors.Reject("bad-amount", "amount %d is not positive", n)
	}
	return n, nil
}

// Apply returns the account after event e, or a processors.Rejection when
// the event breaks the rules of the domain. cur is nil for an account that
// does not exist. Apply is deterministic and does not modify cur.
func Apply(cur *Account, e *Event) (*Account, error) {
	switch e.Type {
	case AccountCreated, Deposited, Withdrawn, Closed:
	default:
		return nil, processors.Reject("unknown-type", "unknown event type %q", e.Type)
	}
	if e.Account == "" {
		return nil, processors.Reject("no-account", "%s without an account", e.Type)
	}
	if e.Type == AccountCreated {
		if cur != nil {
			return nil, processors.Reject("duplicate-account", "account %s already exists", e.Account)
		}
		return &Account{Account: e.Account, Owner: e.Owner, Status: StatusOpen, Events: 1, UpdatedAt: parseTime(e.At)}, nil
	}
	if cur == nil {
		return nil, processors.Reject("unknown-account", "%s for account %s, which does not exist", e.Type, e.Account)
	}
	if cur.Status == StatusClosed {
		return nil, processors.Reject("closed-account", "%s for account %s, which is closed", e.Type, e.Account)
	}
	next := *cur
	next.Events++
	next.UpdatedAt = parseTime(e.At)
	switch e.Type {
	case Deposited:
		n, err := e.amount()
		if err != nil {
			return nil, err
		}
		next.Balance += n
	case Withdrawn:
		n, err := e.amount()
		if err != nil {
			return nil, err
		}
		if n > cur.Balance {
			return nil, processors.Reject("insufficient-funds", "withdrawal of %d from account %s exceeds its balance %d", n, e.Account, cur.Balance)
		}
		next.Balance -= n
	case Closed:
		next.Status = StatusClosed
	}
	return &next, nil
}

func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// AccountCodec encodes accounts as JSON.
type AccountCodec struct{}

// Encode encodes an *Account.
func (AccountCodec) Encode(v any) ([]byte, error) {
	a, ok := v.(*Account)
	if !ok {
		return nil, fmt.Errorf("account codec: cannot encode %T", v)
	}
	return json.Marshal(a)
}

// Decode decodes an *Account.
func (AccountCodec) Decode(data []byte) (any, error) {
	var a Account
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("account codec: %w", err)
	}
	return &a, nil
}

// Graph returns the projection: input events from input, state in the
// group table of group (topic group + "-table"), rejected events in the
// dead-letter topic group + "-dlq".
func Graph(input string, group string, rt *processors.Runtime) *goka.GroupGraph {
	handle := processors.Handle(rt, DecodeEvent, func(ctx goka.Context, e *Event) error {
		var cur *Account
		if v := ctx.Value(); v != nil {
			cur = v.(*Account)
		}
		if e.Account != "" && e.Account != ctx.Key() {
			return processors.Reject("key-mismatch", "event for account %s has record key %q", e.Account, ctx.Key())
		}
		next, err := Apply(cur, e)
		if err != nil {
			return err
		}
		ctx.SetValue(next)
		return nil
	})
	return processors.DefineGroup(rt, goka.Group(group),
		goka.Input(goka.Stream(input), new(codec.Bytes), handle),
		processors.Persist(AccountCodec{}),
	)
}

// Table returns the table topic of a group.
func Table(group string) goka.Table { return goka.GroupTable(goka.Group(group)) }
