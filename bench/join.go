package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
)

// joinTiers is how many tiers a customer of the join input can have.
const joinTiers = 3

// customer is a value of the join's customer table, keyed by its id.
type customer struct {
	ID   string `json:"id"`
	Tier int64  `json:"tier"`
}

// order is a record of the join's order stream, keyed by its customer id.
type order struct {
	Seq      int    `json:"seq"`
	Customer string `json:"customer"`
	Amount   int64  `json:"amount"`
}

// enrichedOrder is an order joined with its customer.
type enrichedOrder struct {
	Amount int64
	Tier   int64
}

// customerTotal is a value of the join's result table: a customer's tier
// (from the customer table), its number of orders and their total, each
// order's amount times the tier.
type customerTotal struct {
	Tier   int64 `json:"tier"`
	Orders int64 `json:"orders"`
	Total  int64 `json:"total"`
}

func customerName(k int) string { return fmt.Sprintf("cust-%05d", k) }

// joinInput returns the join workload's input: a table of customers
// customers (keyed by id, a seeded random tier each), events orders keyed
// by a seeded random customer id (amounts 1 to 1000), and the independent
// fold of both: the total of every customer that has orders.
func joinInput(events, customers int) (table, orders []record, want map[string]customerTotal) {
	rng := rand.New(rand.NewPCG(inputSeed, inputSeed+1))
	tiers := make([]int64, customers)
	table = make([]record, customers)
	for k := range table {
		tiers[k] = 1 + rng.Int64N(joinTiers)
		table[k] = record{key: customerName(k), value: fmt.Appendf(nil, `{"id":%q,"tier":%d}`, customerName(k), tiers[k])}
	}
	want = make(map[string]customerTotal, customers)
	orders = make([]record, events)
	for i := range orders {
		k := rng.IntN(customers)
		id := customerName(k)
		amount := 1 + rng.Int64N(1000)
		orders[i] = record{key: id, value: fmt.Appendf(nil, `{"seq":%d,"customer":%q,"amount":%d}`, i, id, amount)}
		t := want[id]
		t.Tier = tiers[k]
		t.Orders++
		t.Total += amount * tiers[k]
		want[id] = t
	}
	return table, orders, want
}

// errNoCustomer rejects an order whose customer is not in the table: the
// input has none.
var errNoCustomer = errors.New("the order's customer is not in the customer table")

// joinOrder is the join of both engines: the order with its customer's
// tier.
func joinOrder(o *order, c *customer) (*enrichedOrder, error) {
	if o == nil || c == nil {
		return nil, errNoCustomer
	}
	return &enrichedOrder{Amount: o.Amount, Tier: c.Tier}, nil
}

// addOrder folds an enriched order into its customer's total (cur nil:
// none yet).
func addOrder(cur *customerTotal, e *enrichedOrder) *customerTotal {
	next := customerTotal{Tier: e.Tier, Orders: 1, Total: e.Amount * e.Tier}
	if cur != nil {
		next.Orders += cur.Orders
		next.Total += cur.Total
	}
	return &next
}

// decodeTotal decodes a customerTotal written as JSON.
func decodeTotal(data []byte) (customerTotal, error) {
	var t customerTotal
	err := json.Unmarshal(data, &t)
	return t, err
}
