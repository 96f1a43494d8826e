#!/usr/bin/env python3
"""Generate the input events and the expected read models of the CQRS
topologies in this directory (customers.yaml, profiles.yaml, ratings.yaml)
and the expected rejection rule of every bad bank event (bank.yaml).

Standard library only, fixed seed: every run writes byte-identical files.
The expected outputs are computed here by small reference implementations
of the rules written in README.md, independently of the Go code and of the
CEL expressions under test. Run from anywhere:

    python3 testdata/cqrs/gen.py

Files written next to this script (JSON lines, compact separators, keys in
the order shown; read models sorted by key):

  customer-events.jsonl           CustomerCreated {type, customer, name, segment}
  order-events.jsonl              OrderCreated {type, order, customer, amount, at}
  expected-customer-orders.jsonl  {customer, name, segment, orders, total}
  expected-segment-months.jsonl   {key, value: {segment, month, orders, total}}

  profile-commands.jsonl          UpdateUserProfileCommand {type, user, expected_version, name, email}
                                  (a few malformed lines, which are dead-lettered)
  expected-profile-events.jsonl   the events of the command processor, in order
  expected-profiles.jsonl         {user, version, name, email, last}: the command processor's table
  expected-search-index.jsonl     {id, version, name, email, email_domain, keywords}

  rating-events.jsonl             RatingGiven {type, customer, stars}
  expected-customer-ratings.jsonl {customer, ratings, stars, average, class, previous_class, changed}
  expected-classification-events.jsonl  CustomerClassificationUpdated events, in order
  expected-email-campaign.jsonl   {customer, class, campaign, classifications}

  bank-bad-rejects.jsonl          {line, rule}: the rule (testdata/bank/README.md)
                                  that rejects each rejected line of
                                  testdata/bank/bad-events.jsonl, from the
                                  reference implementation in testdata/bank/gen.py

The customers reference assumes every CustomerCreated is processed before
any order (the integration test starts the order groups only once the
customers table is complete); orders of customers that never exist (cust-9xx)
keep name and segment null and count in the segment "unknown".
"""

import importlib.util
import json
import os
import random
from datetime import datetime, timedelta, timezone

SEED = 20260301
HERE = os.path.dirname(os.path.abspath(__file__))


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


def write_lines(name, objs):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        for o in objs:
            f.write((o if isinstance(o, str) else dumps(o)) + "\n")


def fmt_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


FIRST = ["Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John",
         "Margaret", "Ken", "Radia", "Niklaus", "Hedy", "Tim", "Katherine", "Dennis"]
LAST = ["Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen",
        "McCarthy", "Hamilton", "Thompson", "Perlman", "Wirth", "Lamarr", "Lee"]


# ---------------------------------------------------------------------------
# customers and orders (customers.yaml)
# ---------------------------------------------------------------------------

SEGMENTS = ["retail", "b2b", "vip"]


def customers_and_orders(rng):
    customers = []
    for i in range(1, 31):
        cid = "cust-%03d" % i
        customers.append({"type": "CustomerCreated", "customer": cid,
                          "name": "%s %s" % (rng.choice(FIRST), rng.choice(LAST)),
                          "segment": rng.choice(SEGMENTS)})
    ids = [c["customer"] for c in customers] + ["cust-901", "cust-902"]  # never created
    weights = [1.0] * 30 + [0.15, 0.15]
    t = datetime(2026, 1, 1, tzinfo=timezone.utc)
    orders = []
    for i in range(1, 301):
        t += timedelta(seconds=rng.randint(600, 26000))  # ~3 months in all
        orders.append({"type": "OrderCreated", "order": "ord-%04d" % i,
                       "customer": rng.choices(ids, weights)[0],
                       "amount": rng.randint(1, 500) * 25, "at": fmt_time(t)})

    known = {c["customer"]: c for c in customers}
    per_customer, per_segment_month = {}, {}
    for o in orders:
        c = known.get(o["customer"])
        cur = per_customer.setdefault(o["customer"], {
            "customer": o["customer"], "name": None, "segment": None, "orders": 0, "total": 0})
        if c is not None:
            cur["name"], cur["segment"] = c["name"], c["segment"]
        cur["orders"] += 1
        cur["total"] += o["amount"]
        seg = c["segment"] if c is not None else "unknown"
        month = o["at"][:7]
        key = "%s/%s" % (seg, month)
        sm = per_segment_month.setdefault(key, {"segment": seg, "month": month, "orders": 0, "total": 0})
        sm["orders"] += 1
        sm["total"] += o["amount"]

    # daily purchases: 24h windows of the order's `at` (its event time),
    # keyed "<customer>@<day start>". The test closes every window (later
    # orders move stream time on), so the final values suppressed until
    # window close are these too.
    daily = {}
    for o in orders:
        key = "%s@%sT00:00:00Z" % (o["customer"], o["at"][:10])
        d = daily.setdefault(key, {"customer": o["customer"], "orders": 0, "total": 0})
        d["orders"] += 1
        d["total"] += o["amount"]

    write_lines("customer-events.jsonl", customers)
    write_lines("order-events.jsonl", orders)
    write_lines("expected-customer-orders.jsonl", [per_customer[k] for k in sorted(per_customer)])
    write_lines("expected-segment-months.jsonl",
                [{"key": k, "value": per_segment_month[k]} for k in sorted(per_segment_month)])
    write_lines("expected-daily-purchases.jsonl",
                [{"key": k, "value": daily[k]} for k in sorted(daily)])
    return len(customers), len(orders)


# ---------------------------------------------------------------------------
# user profiles (profiles.yaml)
# ---------------------------------------------------------------------------

def profile_outcome(state, cmd):
    """Apply one well-formed command; return the event it produces."""
    user = cmd["user"]
    cur = state.get(user, {"version": 0, "name": "", "email": ""})
    reason = None
    if cmd["name"].strip() == "":
        reason = "name is empty"
    elif "@" not in cmd["email"]:
        reason = "email %s has no @" % cmd["email"]
    elif cmd["expected_version"] != cur["version"]:
        reason = "version conflict: expected %d, current %d" % (cmd["expected_version"], cur["version"])
    if reason is not None:
        event = {"type": "UserProfileUpdateRejected", "user": user, "reason": reason}
        state[user] = dict(cur, last=event)
        return event
    v = cur["version"] + 1
    event = {"type": "UserProfileUpdatedEvent", "user": user, "version": v,
             "name": cmd["name"], "email": cmd["email"]}
    state[user] = {"version": v, "name": cmd["name"], "email": cmd["email"], "last": event}
    return event


def profiles(rng):
    users = ["user-%02d" % i for i in range(1, 26)]
    lines, events, state = [], [], {}
    for i in range(150):
        user = rng.choice(users)
        v = state.get(user, {}).get("version", 0)
        name = "%s %s" % (rng.choice(FIRST), rng.choice(LAST))
        email = "%s.%d@%s" % (name.split(" ")[0].lower(), i, rng.choice(["example.org", "Mail.Example.COM"]))
        expected = v
        r = rng.random()
        if r < 0.12 and v > 0:
            expected = v - 1          # a stale client
        elif r < 0.18:
            expected = v + 2          # a confused client
        elif r < 0.23:
            email = email.replace("@", " at ")
        elif r < 0.27:
            name = "   "
        cmd = {"type": "UpdateUserProfileCommand", "user": user, "expected_version": expected,
               "name": name, "email": email}
        lines.append(dumps(cmd))
        events.append(profile_outcome(state, cmd))
    # Malformed records: dead-lettered, no event.
    malformed = [
        '{"type":"UpdateUserProfileCommand","user":"user-01","expected_version":"1","name":"X","email":"x@example.org"}',
        '{"type":"UpdateUserProfileCommand","user":"user-02","expected_version":1,"name":"No Email"}',
        '["UpdateUserProfileCommand","user-03"]',
    ]
    for pos, line in zip((40, 90, 149), malformed):
        lines.insert(pos, line)

    search = {}
    for e in events:
        if e["type"] != "UserProfileUpdatedEvent":
            continue
        doc = {"id": e["user"], "version": e["version"], "name": e["name"], "email": e["email"],
               "email_domain": e["email"][e["email"].rindex("@") + 1:].lower(),
               "keywords": [w for w in e["name"].lower().split(" ") if w != ""] + [e["email"].lower()]}
        if e["user"] not in search or doc["version"] > search[e["user"]]["version"]:
            search[e["user"]] = doc

    write_lines("profile-commands.jsonl", lines)
    write_lines("expected-profile-events.jsonl", events)
    write_lines("expected-profiles.jsonl",
                [{"user": u, "version": state[u]["version"], "name": state[u]["name"],
                  "email": state[u]["email"], "last": state[u]["last"]} for u in sorted(state)])
    write_lines("expected-search-index.jsonl", [search[u] for u in sorted(search)])
    return len(lines), len(malformed), len(events)


# ---------------------------------------------------------------------------
# ratings saga (ratings.yaml)
# ---------------------------------------------------------------------------

CAMPAIGNS = {"A": "loyalty-rewards", "B": "upsell", "C": "win-back"}


def rating_class(s, n):
    if s >= 4 * n:
        return "A"
    if 2 * s >= 5 * n:
        return "B"
    return "C"


def ratings(rng):
    customers = ["rc-%02d" % i for i in range(1, 41)]
    # Each customer's ratings drift from one mean to another.
    means = {c: (rng.uniform(1, 5), rng.uniform(1, 5)) for c in customers}
    count = {c: 0 for c in customers}
    lines = []
    for _ in range(400):
        c = rng.choice(customers)
        a, b = means[c]
        count[c] += 1
        mean = a if count[c] < 6 else b
        stars = max(1, min(5, int(round(rng.gauss(mean, 0.8)))))
        lines.append({"type": "RatingGiven", "customer": c, "stars": stars})

    state, events, campaign = {}, [], {}
    for r in lines:
        c = r["customer"]
        cur = state.get(c, {"ratings": 0, "stars": 0, "class": None})
        n, s = cur["ratings"] + 1, cur["stars"] + r["stars"]
        cls = rating_class(s, n)
        state[c] = {"customer": c, "ratings": n, "stars": s, "average": s / n, "class": cls,
                    "previous_class": cur["class"], "changed": cls != cur["class"]}
        if cls != cur["class"]:
            events.append({"type": "CustomerClassificationUpdated", "customer": c,
                           "class": cls, "previous_class": cur["class"]})
            prev = campaign.get(c, {"classifications": 0})
            campaign[c] = {"customer": c, "class": cls, "campaign": CAMPAIGNS[cls],
                           "classifications": prev["classifications"] + 1}

    write_lines("rating-events.jsonl", lines)
    write_lines("expected-customer-ratings.jsonl", [state[c] for c in sorted(state)])
    write_lines("expected-classification-events.jsonl", events)
    write_lines("expected-email-campaign.jsonl", [campaign[c] for c in sorted(campaign)])
    return len(lines), len(events)


# ---------------------------------------------------------------------------
# bank: the rule of every rejected bad event, from testdata/bank/gen.py
# ---------------------------------------------------------------------------

def bank_bad_rejects():
    spec = importlib.util.spec_from_file_location("bankgen", os.path.join(HERE, "..", "bank", "gen.py"))
    bank = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bank)
    with open(os.path.join(HERE, "..", "bank", "bad-events.jsonl"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    _, rejects = bank.replay(lines)
    write_lines("bank-bad-rejects.jsonl",
                [{"line": n, "rule": int(reason.split(":")[0])} for n, reason in rejects])
    return len(rejects)


def main():
    rng = random.Random(SEED)
    nc, no = customers_and_orders(rng)
    ncmd, nbad, nev = profiles(rng)
    nr, nchanges = ratings(rng)
    nrej = bank_bad_rejects()
    print("cqrs: %d customers, %d orders; %d profile commands (%d malformed), %d events; "
          "%d ratings, %d classification changes; bank: %d bad events"
          % (nc, no, ncmd, nbad, nev, nr, nchanges, nrej))


if __name__ == "__main__":
    main()
