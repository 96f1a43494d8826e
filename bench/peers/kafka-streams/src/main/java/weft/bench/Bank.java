package weft.bench;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The bank read model: account events folded into balances by the rules of
 * testdata/cqrs/bank.yaml (the same checks in the same order). A rejected
 * event changes no state (weft dead-letters it; here it is only counted).
 */
final class Bank {
  /** One input event. */
  public static final class Event {
    public String type;
    public String account;
    public String owner;
    public Long amount;
  }

  /** One account of the read model. */
  public static final class Account {
    public String account;
    public String owner;
    public long balance;
    public String status;
    public long events;

    public Account() {}

    Account(String account, String owner, long balance, String status, long events) {
      this.account = account;
      this.owner = owner;
      this.balance = balance;
      this.status = status;
      this.events = events;
    }
  }

  private final AtomicLong rejected = new AtomicLong();

  long rejected() {
    return rejected.get();
  }

  private Account reject(Account agg) {
    rejected.incrementAndGet();
    return agg;
  }

  /** The aggregator: the new account, or the old one if the event is rejected. */
  Account add(String key, Event v, Account agg) {
    if (v == null) {
      return reject(agg); // 1: not a JSON object
    }
    if (v.type == null || !(v.type.equals("AccountCreated") || v.type.equals("Deposited")
        || v.type.equals("Withdrawn") || v.type.equals("Closed"))) {
      return reject(agg); // 2: unknown event type
    }
    if (v.account == null || v.account.isEmpty() || !v.account.equals(key)) {
      return reject(agg); // 3: missing account, or not the record key
    }
    if (v.type.equals("AccountCreated")) {
      if (agg != null) {
        return reject(agg); // 4: account already exists
      }
      return new Account(v.account, v.owner == null ? "" : v.owner, 0, "open", 1);
    }
    if (agg == null) {
      return reject(null); // 5: unknown account
    }
    if (agg.status.equals("closed")) {
      return reject(agg); // 6: account closed
    }
    if (v.type.equals("Closed")) {
      return new Account(agg.account, agg.owner, agg.balance, "closed", agg.events + 1);
    }
    if (v.amount == null || v.amount <= 0) {
      return reject(agg); // 7: bad amount
    }
    if (v.type.equals("Withdrawn")) {
      if (v.amount > agg.balance) {
        return reject(agg); // 8: insufficient funds
      }
      return new Account(agg.account, agg.owner, agg.balance - v.amount, "open", agg.events + 1);
    }
    return new Account(agg.account, agg.owner, Math.addExact(agg.balance, v.amount), "open", agg.events + 1);
  }
}
