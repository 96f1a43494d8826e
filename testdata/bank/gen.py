#!/usr/bin/env python3
"""Generate the bank-account event-sourcing test data for weft.

Standard library only, fixed random seed: every run writes byte-identical
files. The expected read models are computed here, in Python, by a small
reference implementation of the rules below (``apply_line``), independently
of the Go code under test. Run from anywhere (paths are relative to this
file), e.g. from the repository root:

    python3 testdata/bank/gen.py

Files written next to this script:

  events.jsonl              ~5,000 valid events over 300 accounts, interleaved
                            across accounts, in time order
  expected.jsonl            final read model of events.jsonl
  bad-events.jsonl          a fixed, hand-written mix of valid and bad lines
                            for acc-9001..acc-9003 (see BAD_LINES)
  bad-expected.jsonl        final read model of bad-events.jsonl (valid
                            events only)
  bad-expected-rejects.txt  one line: the number of rejected lines of
                            bad-events.jsonl

Event schema (one JSON object per line, exact field names):

  {"type":"AccountCreated","account":"acc-0001","owner":"Alice Smith","at":"2026-01-01T00:00:00Z"}
  {"type":"Deposited","account":"acc-0001","amount":1250,"at":"..."}
  {"type":"Withdrawn","account":"acc-0001","amount":300,"at":"..."}
  {"type":"Closed","account":"acc-0001","at":"..."}

  amount: positive integer, in cents. at: RFC 3339 UTC, second precision,
  strictly increasing across events.jsonl.

events.jsonl guarantees: every account starts with exactly one
AccountCreated (accounts are created in id order); a Withdrawn never exceeds
the current balance; 10% of the accounts (30) are closed, only when their
balance is 0 (a final Withdrawn of the whole balance is generated first when
needed); a closed account gets no further events. Every line is accepted
by the rules below (the script checks this).

Read model (expected.jsonl, bad-expected.jsonl): one line per account,
sorted by account id, keys in this order, compact separators:

  {"account":"acc-0001","owner":"Alice Smith","balance":950,"status":"open","events":3}

  owner   = owner of the AccountCreated event
  balance = sum(accepted Deposited amounts) - sum(accepted Withdrawn amounts)
  status  = "open" or "closed"
  events  = number of accepted events of the account, including its
            AccountCreated and Closed; rejected lines are not counted

Rejection rules (a rejected line changes no state and is counted once; the
processor keeps going). Each line is one record; the checks are applied in
this order and the first failing one is the reason:

  1. not parseable as JSON, or the JSON value is not an object
  2. "type" missing, not a string, or not one of AccountCreated, Deposited,
     Withdrawn, Closed (case-sensitive; e.g. "Teleported")
  3. "account" missing, not a string, or the empty string
  4. AccountCreated for an account that already exists (open or closed)
  5. any other type for an account that does not exist (never created)
  6. any event for a closed account
  7. Deposited / Withdrawn whose "amount" is missing, not a JSON integer
     (strings, fractions such as 12.5, booleans, null are rejected) or <= 0
  8. Withdrawn whose amount exceeds the current balance (withdrawing the
     whole balance is allowed)

Not checked (accepted as they are): unknown extra fields, the "at" value,
"owner" (never missing in these files), and the balance at Closed (always 0
in these files). The data files contain no blank lines.
"""

import json
import os
import random
from datetime import datetime, timedelta, timezone

SEED = 20260101
NUM_ACCOUNTS = 300
NUM_CLOSED = 30  # 10%
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
BAD_START = datetime(2026, 2, 1, tzinfo=timezone.utc)

HERE = os.path.dirname(os.path.abspath(__file__))

FIRST_NAMES = [
    "Alice", "Bob", "Carol", "David", "Emma", "Farid", "Grace", "Hiroshi",
    "Isabel", "James", "Katarzyna", "Liam", "Maria", "Noah", "Olivia",
    "Pedro", "Quinn", "Rosa", "Samuel", "Tanvi", "Umar", "Valentina",
    "William", "Xin", "Yusuf", "Zoe", "Amara", "Bjorn", "Chloe", "Dmitri",
    "Elena", "Felix", "Giulia", "Hannah", "Ivan", "Julia", "Kenji", "Lucia",
    "Mateo", "Nadia",
]
LAST_NAMES = [
    "Smith", "Johnson", "Garcia", "Muller", "Rossi", "Nguyen", "Kowalski",
    "Tanaka", "Okafor", "Silva", "Dubois", "Jensen", "Novak", "Patel",
    "Kim", "Lopez", "Schmidt", "Brown", "Wilson", "Martin", "Costa",
    "Ivanova", "Hansen", "Moreau", "Fischer", "Santos", "Khan", "Larsen",
    "Murphy", "Ahmed", "Berg", "Cohen", "Walker", "Young", "Chen",
]

TYPES = ("AccountCreated", "Deposited", "Withdrawn", "Closed")


def fmt_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------------------
# Reference implementation of the rules (used for both data sets).
# ---------------------------------------------------------------------------

def is_json_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def apply_line(state, line):
    """Apply one line to state (dict account -> dict). Return None if the
    line was accepted, else a short rejection reason."""
    try:
        ev = json.loads(line)
    except ValueError:
        return "1: unparseable JSON"
    if not isinstance(ev, dict):
        return "1: not a JSON object"
    typ = ev.get("type")
    if not isinstance(typ, str) or typ not in TYPES:
        return "2: unknown type"
    acc = ev.get("account")
    if not isinstance(acc, str) or acc == "":
        return "3: missing account"
    cur = state.get(acc)
    if typ == "AccountCreated":
        if cur is not None:
            return "4: account already exists"
    else:
        if cur is None:
            return "5: unknown account"
        if cur["status"] == "closed":
            return "6: account closed"
    if typ in ("Deposited", "Withdrawn"):
        amount = ev.get("amount")
        if not is_json_int(amount) or amount <= 0:
            return "7: bad amount"
        if typ == "Withdrawn" and amount > cur["balance"]:
            return "8: insufficient balance"

    if typ == "AccountCreated":
        state[acc] = {"owner": ev.get("owner", ""), "balance": 0,
                      "status": "open", "events": 1}
        return None
    if typ == "Deposited":
        cur["balance"] += ev["amount"]
    elif typ == "Withdrawn":
        cur["balance"] -= ev["amount"]
    elif typ == "Closed":
        cur["status"] = "closed"
    cur["events"] += 1
    return None


def replay(lines):
    state, rejects = {}, []
    for n, line in enumerate(lines, 1):
        reason = apply_line(state, line)
        if reason is not None:
            rejects.append((n, reason))
    return state, rejects


def read_model(state):
    out = []
    for acc in sorted(state):
        s = state[acc]
        out.append(dumps({"account": acc, "owner": s["owner"],
                          "balance": s["balance"], "status": s["status"],
                          "events": s["events"]}))
    return out


# ---------------------------------------------------------------------------
# events.jsonl
# ---------------------------------------------------------------------------

def generate_events(rng):
    ids = ["acc-%04d" % i for i in range(1, NUM_ACCOUNTS + 1)]
    owners = {a: "%s %s" % (rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
              for a in ids}
    owners[ids[0]] = "Alice Smith"
    # Number of Deposited/Withdrawn operations per account (before closing).
    ops = {a: rng.randint(4, 27) for a in ids}
    ops[ids[1]] = 0   # acc-0002: created, never used, stays open
    closing = set(rng.sample(ids[2:], NUM_CLOSED))
    first_closed = min(closing)
    ops[first_closed] = 0  # created then closed straight away

    t = START
    lines = []
    balance = {a: 0 for a in ids}
    active = []          # created, not closed, still has work to do
    pending = list(ids)  # not yet created, in id order

    def emit(ev):
        nonlocal t
        ev["at"] = fmt_time(t)
        lines.append(dumps(ev))
        t += timedelta(seconds=rng.randint(1, 600))

    while pending or active:
        # Create accounts early in the timeline, but interleaved with activity.
        if pending and (not active or
                        rng.random() < len(pending) / (len(pending) + 3 * len(active))):
            a = pending.pop(0)
            emit({"type": "AccountCreated", "account": a, "owner": owners[a]})
            active.append(a)
            continue
        a = rng.choice(active)
        if ops[a] > 0:
            ops[a] -= 1
            b = balance[a]
            if b == 0 or rng.random() < 0.6:
                amount = rng.choice((rng.randint(1, 99) * 100,
                                     rng.randint(100, 250000),
                                     rng.randint(1, 5000)))
                balance[a] += amount
                emit({"type": "Deposited", "account": a, "amount": amount})
            else:
                amount = b if rng.random() < 0.1 else rng.randint(1, b)
                balance[a] -= amount
                emit({"type": "Withdrawn", "account": a, "amount": amount})
            continue
        # No work left for this account.
        if a in closing:
            if balance[a] > 0:
                emit({"type": "Withdrawn", "account": a, "amount": balance[a]})
                balance[a] = 0
            else:
                emit({"type": "Closed", "account": a})
                active.remove(a)
        else:
            active.remove(a)
    return lines


# ---------------------------------------------------------------------------
# bad-events.jsonl (fixed, hand-written; "at" is filled in increasing order)
# ---------------------------------------------------------------------------

# (line, expected outcome): None = accepted, else the rule number that
# rejects it. "@" in a line is replaced by the next timestamp.
BAD_LINES = [
    ('{"type":"AccountCreated","account":"acc-9001","owner":"Ada Lovelace","at":"@"}', None),
    ('{"type":"AccountCreated","account":"acc-9002","owner":"Alan Turing","at":"@"}', None),
    ('{"type":"Deposited","account":"acc-9001","amount":5000,"at":"@"}', None),
    ('{"type":"Deposited","account":"acc-9002","amount":', 1),  # truncated object
    ('this is not json', 1),
    ('["not","an","object"]', 1),
    ('{"type":"Teleported","account":"acc-9001","at":"@"}', 2),
    ('{"type":"deposited","account":"acc-9001","amount":100,"at":"@"}', 2),
    ('{"type":"Deposited","account":"acc-9999","amount":100,"at":"@"}', 5),
    ('{"type":"Withdrawn","account":"acc-9999","amount":50,"at":"@"}', 5),
    ('{"type":"Deposited","account":"acc-9002","amount":-200,"at":"@"}', 7),
    ('{"type":"Deposited","account":"acc-9002","at":"@"}', 7),
    ('{"type":"Deposited","amount":100,"at":"@"}', 3),
    ('{"type":"Deposited","account":"","amount":100,"at":"@"}', 3),
    ('{"type":"AccountCreated","account":"acc-9003","owner":"Grace Hopper","at":"@"}', None),
    ('{"type":"Deposited","account":"acc-9002","amount":2500,"at":"@"}', None),
    ('{"type":"Withdrawn","account":"acc-9002","amount":3000,"at":"@"}', 8),
    ('{"type":"Withdrawn","account":"acc-9001","amount":1200,"at":"@"}', None),
    ('{"type":"AccountCreated","account":"acc-9001","owner":"Mallory Evil","at":"@"}', 4),
    ('{"type":"Deposited","account":"acc-9001","amount":"100","at":"@"}', 7),
    ('{"type":"Deposited","account":"acc-9002","amount":12.5,"at":"@"}', 7),
    ('{"type":"Withdrawn","account":"acc-9001","amount":0,"at":"@"}', 7),
    ('{"type":"Deposited","account":"acc-9003","amount":700,"at":"@"}', None),
    ('{"type":"Withdrawn","account":"acc-9003","amount":700,"at":"@"}', None),
    ('{"type":"Closed","account":"acc-9003","at":"@"}', None),
    ('{"type":"Deposited","account":"acc-9003","amount":100,"at":"@"}', 6),
    ('{"type":"Closed","account":"acc-9003","at":"@"}', 6),
    ('{"type":"Withdrawn","account":"acc-9001","amount":99999,"at":"@"}', 8),
    ('{"type":"Deposited","account":"acc-9001","amount":300,"at":"@"}', None),
]


def bad_event_lines():
    out, t = [], BAD_START
    for line, _ in BAD_LINES:
        if '"@"' in line:
            line = line.replace('"@"', '"%s"' % fmt_time(t))
            t += timedelta(seconds=60)
        out.append(line)
    return out


def write_lines(name, lines):
    with open(os.path.join(HERE, name), "w", encoding="utf-8", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def main():
    rng = random.Random(SEED)

    events = generate_events(rng)
    state, rejects = replay(events)
    if rejects:
        raise SystemExit("gen.py: generated events rejected: %r" % rejects[:5])
    ats = [json.loads(l)["at"] for l in events]
    if any(a >= b for a, b in zip(ats, ats[1:])):
        raise SystemExit("gen.py: timestamps not strictly increasing")
    if any(s["balance"] < 0 for s in state.values()):
        raise SystemExit("gen.py: negative balance")
    if any(s["status"] == "closed" and s["balance"] != 0 for s in state.values()):
        raise SystemExit("gen.py: closed account with non-zero balance")
    expected = read_model(state)

    bad = bad_event_lines()
    bad_state, bad_rejects = replay(bad)
    got = {n: int(r.split(":")[0]) for n, r in bad_rejects}
    want = {n: rule for n, (_, rule) in enumerate(BAD_LINES, 1) if rule is not None}
    if got != want:
        raise SystemExit("gen.py: bad-events outcome %r, want %r" % (got, want))
    bad_expected = read_model(bad_state)

    write_lines("events.jsonl", events)
    write_lines("expected.jsonl", expected)
    write_lines("bad-events.jsonl", bad)
    write_lines("bad-expected.jsonl", bad_expected)
    write_lines("bad-expected-rejects.txt", [str(len(bad_rejects))])

    closed = sum(1 for s in state.values() if s["status"] == "closed")
    print("bank: %d events, %d accounts (%d closed); bad: %d lines, %d rejected, %d accounts"
          % (len(events), len(state), closed, len(bad), len(bad_rejects), len(bad_state)))


if __name__ == "__main__":
    main()
