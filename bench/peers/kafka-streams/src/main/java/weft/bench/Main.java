package weft.bench;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;

/**
 * The Kafka Streams peer of weft's benchmark harness ({@code go run ./bench}).
 *
 * <p>Runs one workload over the input topic, with Kafka Streams' default
 * configuration except the application id, the bootstrap servers, the state
 * directory and the serdes, until it has seen every input record, then closes
 * the application (which flushes its record caches to the stores and the
 * changelog and commits) and prints one JSON line with what it did. The
 * harness measures its wall clock and CPU time and verifies the table from
 * the changelog topic {@code <app>-<store>-changelog}.
 *
 * <pre>
 *   java -jar weft-bench-kafka-streams.jar WORKLOAD BOOTSTRAP APP INPUT EVENTS STATE_DIR [CUSTOMERS]
 * </pre>
 *
 * <ul>
 *   <li>count: {@code stream(input).groupByKey().count()} into the store "counts";
 *   <li>bank: JSON account events folded into balances by the rules of
 *       testdata/cqrs/bank.yaml ({@link Bank}) into the store "balances";
 *   <li>join: orders joined with the customer table CUSTOMERS, a
 *       {@code GlobalKTable} (complete before processing starts, as goka's and
 *       weft's lookup tables), folded per customer ({@link Orders}) into the
 *       store "totals";
 *   <li>window: {@code groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(1 min, 1 h)).count()}
 *       by the event time in the value into the store "window-counts".
 * </ul>
 */
public final class Main {
  private Main() {}

  /** VmHWM of /proc/self/status in bytes: this process's peak RSS; 0 without /proc. */
  static long peakRss() {
    try {
      for (String line : java.nio.file.Files.readAllLines(java.nio.file.Path.of("/proc/self/status"))) {
        if (line.startsWith("VmHWM:")) {
          String[] f = line.substring(6).trim().split("\\s+");
          if (f.length == 2 && f[1].equals("kB")) {
            return Long.parseLong(f[0]) * 1024;
          }
        }
      }
    } catch (java.io.IOException | NumberFormatException e) {
      return 0;
    }
    return 0;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 6 && !(args.length == 7 && args[0].equals("join"))) {
      System.err.println("usage: java -jar weft-bench-kafka-streams.jar count|bank|join|window BOOTSTRAP APP INPUT EVENTS STATE_DIR [CUSTOMERS (join)]");
      System.exit(2);
    }
    String workload = args[0];
    long events = Long.parseLong(args[4]);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, args[2]);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
    props.put(StreamsConfig.STATE_DIR_CONFIG, args[5]);

    AtomicLong seen = new AtomicLong();
    Bank bank = new Bank();
    Orders orders = new Orders();
    StreamsBuilder builder = new StreamsBuilder();
    switch (workload) {
      case "count" -> builder.stream(args[3], Consumed.with(Serdes.String(), Serdes.ByteArray()))
          .peek((k, v) -> seen.incrementAndGet())
          .groupByKey(Grouped.with(Serdes.String(), Serdes.ByteArray()))
          .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("counts")
              .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
      case "bank" -> builder.stream(args[3], Consumed.with(Serdes.String(), Json.serde(Bank.Event.class)))
          .peek((k, v) -> seen.incrementAndGet())
          .groupByKey(Grouped.with(Serdes.String(), Json.serde(Bank.Event.class)))
          .aggregate(() -> null, bank::add,
              Materialized.<String, Bank.Account, KeyValueStore<Bytes, byte[]>>as("balances")
                  .withKeySerde(Serdes.String()).withValueSerde(Json.serde(Bank.Account.class)));
      case "join" -> {
        GlobalKTable<String, Orders.Customer> customers = builder.globalTable(args[6],
            Consumed.with(Serdes.String(), Json.serde(Orders.Customer.class)));
        builder.stream(args[3], Consumed.with(Serdes.String(), Json.serde(Orders.Order.class)))
            .peek((k, v) -> seen.incrementAndGet())
            .leftJoin(customers, (k, v) -> k, orders::join)
            .groupByKey(Grouped.with(Serdes.String(), Json.serde(Orders.Enriched.class)))
            .aggregate(() -> null, Orders::add,
                Materialized.<String, Orders.Total, KeyValueStore<Bytes, byte[]>>as("totals")
                    .withKeySerde(Serdes.String()).withValueSerde(Json.serde(Orders.Total.class)));
      }
      case "window" -> builder.stream(args[3], Consumed.with(Serdes.String(), Json.serde(Orders.WindowEvent.class))
              .withTimestampExtractor((rec, partitionTime) -> ((Orders.WindowEvent) rec.value()).ts))
          .peek((k, v) -> seen.incrementAndGet())
          .groupByKey(Grouped.with(Serdes.String(), Json.serde(Orders.WindowEvent.class)))
          .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofHours(1)))
          .count(Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("window-counts")
              .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()));
      default -> {
        System.err.println("unknown workload " + workload + " (want count, bank, join or window)");
        System.exit(2);
      }
    }
    Topology topology = builder.build();

    AtomicReference<Throwable> failure = new AtomicReference<>();
    CountDownLatch failed = new CountDownLatch(1);
    long start = System.nanoTime();
    KafkaStreams streams = new KafkaStreams(topology, props);
    streams.setUncaughtExceptionHandler(e -> {
      failure.set(e);
      failed.countDown();
      return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
    });
    streams.start();
    while (seen.get() < events) {
      if (failed.await(5, TimeUnit.MILLISECONDS)) {
        break;
      }
    }
    long allSeen = System.nanoTime();
    // close() flushes the record caches into the stores and the changelog,
    // waits for the producer's acknowledgements and commits the offsets.
    boolean closed = streams.close(Duration.ofMinutes(5));
    long end = System.nanoTime();
    long cpu = ((com.sun.management.OperatingSystemMXBean)
        java.lang.management.ManagementFactory.getOperatingSystemMXBean()).getProcessCpuTime();

    Map<String, Object> out = new HashMap<>();
    out.put("engine", "kafka-streams");
    out.put("workload", workload);
    out.put("seen", seen.get());
    out.put("rejected", bank.rejected() + orders.rejected());
    out.put("closed", closed);
    out.put("run_ns", allSeen - start);
    out.put("stop_ns", end - allSeen);
    out.put("jvm_cpu_ns", cpu);
    out.put("peak_rss_bytes", peakRss());
    if (failure.get() != null) {
      out.put("error", String.valueOf(failure.get()));
    }
    System.out.println(Json.MAPPER.writeValueAsString(out));
    System.out.flush();
    System.exit(failure.get() == null && closed && seen.get() == events ? 0 : 1);
  }
}
