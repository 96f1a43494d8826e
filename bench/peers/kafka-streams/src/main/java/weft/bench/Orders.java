package weft.bench;

import java.util.concurrent.atomic.AtomicLong;

/**
 * The join workload: orders joined with their customer (a lookup of the
 * customer table by the order's key), folded into a total per customer.
 * An order without a customer is counted as rejected (the input has none).
 */
final class Orders {
  /** A value of the customer table. */
  public static final class Customer {
    public String id;
    public long tier;
  }

  /** A record of the order stream. */
  public static final class Order {
    public long seq;
    public String customer;
    public long amount;
  }

  /** An order joined with its customer's tier. */
  public static final class Enriched {
    public long amount;
    public long tier;

    public Enriched() {}

    Enriched(long amount, long tier) {
      this.amount = amount;
      this.tier = tier;
    }
  }

  /** A value of the result table: the customer's tier, its orders and their total (amount × tier). */
  public static final class Total {
    public long tier;
    public long orders;
    public long total;

    public Total() {}

    Total(long tier, long orders, long total) {
      this.tier = tier;
      this.orders = orders;
      this.total = total;
    }
  }

  private final AtomicLong rejected = new AtomicLong();

  long rejected() {
    return rejected.get();
  }

  /** The joiner of a left join: null (dropped by the aggregation) and counted when the customer is missing. */
  Enriched join(Order o, Customer c) {
    if (o == null || c == null) {
      rejected.incrementAndGet();
      return null;
    }
    return new Enriched(o.amount, c.tier);
  }

  /** The aggregator. */
  static Total add(String key, Enriched e, Total agg) {
    long orders = agg == null ? 0 : agg.orders;
    long total = agg == null ? 0 : agg.total;
    return new Total(e.tier, orders + 1, total + e.amount * e.tier);
  }

  /** A record of the window input. */
  public static final class WindowEvent {
    public long seq;
    public String key;
    public long ts;
  }
}
