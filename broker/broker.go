// Package broker runs the embedded Kafka-protocol broker that weft starts when
// no Kafka brokers are configured.
//
// The broker is a single-node franz-go kfake cluster
// (github.com/twmb/franz-go/pkg/kfake): it speaks the Kafka wire protocol, so
// goka, IBM/sarama and franz-go clients talk to it exactly as they talk to
// Apache Kafka. With [WithDataDir] its state (topics, records and committed
// consumer-group offsets) is persisted to disk and reloaded on the next
// [Start]; without it everything lives in memory and is lost on [Broker.Close].
//
// It exists for development, demos and tests that must run on a machine with
// nothing but Go. It is not a replacement for a Kafka cluster: it has a single
// node, no replication and no security. It must never be used when real
// brokers are configured; callers decide between the two, and a configured
// broker list always wins.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/twmb/franz-go/pkg/kfake"
)

// DefaultAddr is the address the embedded broker listens on when [WithAddr]
// is not given: the standard Kafka port on the IPv4 loopback interface.
const DefaultAddr = "127.0.0.1:9092"

// DefaultPartitions is the number of partitions of topics that are created
// without an explicit partition count (auto-created topics, and CreateTopics
// requests asking for -1 partitions) when [WithPartitions] is not given.
const DefaultPartitions int32 = 8

// Option configures [Start].
type Option func(*config)

type config struct {
	addr        string
	dataDir     string
	syncWrites  bool
	partitions  int32
	logger      *slog.Logger
	addrFlag    string
	dataDirFlag string
}

// WithAddr sets the host:port the broker listens on, overriding
// [DefaultAddr]. Port 0 picks a free port; use [Broker.Addrs] to learn it.
//
// The broker advertises the address it is bound to in its metadata
// responses, and clients connect to that advertised address. The host must
// therefore be one clients can dial: a loopback or interface address, or a
// host name that resolves to one (the name is resolved once, when binding).
// An empty host means 127.0.0.1. Wildcard hosts (0.0.0.0, ::) are rejected,
// because clients cannot connect to an advertised wildcard address.
func WithAddr(hostport string) Option {
	return func(c *config) { c.addr = hostport }
}

// WithDataDir makes the broker persist its state in dir, which is created if
// needed: topics, records and committed consumer-group offsets written before
// [Broker.Close] are there again when a broker is started on the same dir.
// An empty dir (the default) keeps everything in memory.
//
// Only one broker may use a data dir at a time: Start locks it (a LOCK file
// in dir, locked with the operating system's file locks, which end with the
// process that holds them) and refuses a second broker, in this process or
// another, with an error that wraps [ErrDataDirInUse]. [Broker.Close]
// releases the lock.
//
// What is on disk when the machine (not just the process) crashes depends
// on [WithSyncWrites].
func WithDataDir(dir string) Option {
	return func(c *config) { c.dataDir = dir }
}

// WithSyncWrites makes a broker with [WithDataDir] fsync every produced
// batch, committed offset and group change before it answers the request,
// so that everything the broker acknowledged survives a machine crash or a
// power loss. Without it (the default) the broker writes each batch to the
// file before answering, but leaves flushing to the operating system (as
// Kafka does by default, log.flush.interval.messages): everything survives
// the broker's process being killed, but a machine crash loses what the
// operating system had not yet written back, typically the last few seconds
// (Linux writes dirty pages back after about 30 s). Syncing makes every
// produce wait for the disk.
func WithSyncWrites() Option {
	return func(c *config) { c.syncWrites = true }
}

// WithFlagNames names the command-line flags that set the address and the
// data dir, so that the errors Start returns when either is in use tell the
// user which flag picks another one. The defaults are weft's:
// "--embedded-addr" and "--data-dir". An empty name keeps the default.
func WithFlagNames(addrFlag, dataDirFlag string) Option {
	return func(c *config) {
		if addrFlag != "" {
			c.addrFlag = addrFlag
		}
		if dataDirFlag != "" {
			c.dataDirFlag = dataDirFlag
		}
	}
}

// ErrAddrInUse is wrapped by the error [Start] returns when its address is
// taken, e.g. by another broker.
var ErrAddrInUse = errors.New("address already in use")

// ErrDataDirInUse is wrapped by the error [Start] returns when another
// broker holds the lock of its data dir.
var ErrDataDirInUse = errors.New("data dir in use by another broker")

// inUseError is a one-sentence error that wraps both a sentinel
// ([ErrAddrInUse], [ErrDataDirInUse]) and the cause.
type inUseError struct {
	msg      string
	sentinel error
	cause    error
}

func (e *inUseError) Error() string   { return e.msg }
func (e *inUseError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// WithPartitions sets the number of partitions of topics created without an
// explicit partition count, overriding [DefaultPartitions]. It must be
// positive.
func WithPartitions(n int32) Option {
	return func(c *config) { c.partitions = n }
}

// WithLogger sends the broker's logs to l. kfake's levels map to slog levels
// as follows: errors to [slog.LevelError], warnings to [slog.LevelWarn],
// informational messages (per-request and group-membership chatter) to
// [slog.LevelDebug], and debug messages to [slog.LevelDebug]-4, so they only
// show up with a handler that asks for them.
//
// Without this option logs go to [slog.Default], which with its default
// level shows the broker's errors and warnings only. A nil l discards all
// broker logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l == nil {
			l = slog.New(slog.DiscardHandler)
		}
		c.logger = l
	}
}

// Broker is a running embedded broker. Create it with [Start] and release it
// with [Broker.Close]. Its methods are safe for concurrent use.
type Broker struct {
	cluster *kfake.Cluster
	addrs   []string
	lock    io.Closer // of the data dir; nil without one

	closeOnce sync.Once
	closeErr  error
}

// Start starts an embedded single-node broker configured by opts and returns
// once it accepts connections. Topics are auto-created on first use (a
// metadata request asking for it, e.g. from a sarama producer) and through
// the CreateTopics admin API (used by goka).
//
// ctx bounds the start only: once Start returns, the broker runs until
// [Broker.Close] is called.
func Start(ctx context.Context, opts ...Option) (*Broker, error) {
	cfg := config{
		addr:        DefaultAddr,
		partitions:  DefaultPartitions,
		logger:      slog.Default(),
		addrFlag:    "--embedded-addr",
		dataDirFlag: "--data-dir",
	}
	for _, opt := range opts {
		opt(&cfg)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.addr, err)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("start embedded broker on %s: default partitions must be positive, got %d", cfg.addr, cfg.partitions)
	}
	host, port, err := parseAddr(cfg.addr)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.addr, err)
	}

	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake always binds 127.0.0.1:<port>; substitute the
		// configured host so that WithAddr's host is honored.
		kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, p, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, p))
		}),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(int(cfg.partitions)),
		kfake.WithLogger(slogAdapter{cfg.logger}),
	}
	var lock io.Closer
	if cfg.dataDir != "" {
		if lock, err = lockDataDir(cfg.dataDir, cfg.dataDirFlag); err != nil {
			return nil, err
		}
		kopts = append(kopts, kfake.DataDir(cfg.dataDir))
		if cfg.syncWrites {
			kopts = append(kopts, kfake.SyncWrites())
		}
	}

	cluster, err := kfake.NewCluster(kopts...)
	if err != nil {
		if lock != nil {
			_ = lock.Close()
		}
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &inUseError{
				msg:      fmt.Sprintf("address %s is already in use: is another broker running? use %s to pick another", cfg.addr, cfg.addrFlag),
				sentinel: ErrAddrInUse, cause: err,
			}
		}
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.addr, err)
	}
	b := &Broker{cluster: cluster, addrs: cluster.ListenAddrs(), lock: lock}
	if err := ctx.Err(); err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.addr, err)
	}
	cfg.logger.Debug("embedded broker started", "addrs", b.addrs, "data_dir", cfg.dataDir, "sync_writes", cfg.syncWrites)
	return b, nil
}

// Addrs returns the host:port addresses clients should use as bootstrap
// brokers, with the actual port when the broker was started on port 0.
func (b *Broker) Addrs() []string {
	return append([]string(nil), b.addrs...)
}

// Close stops the broker: it stops accepting connections, closes open ones
// and, with [WithDataDir], writes its state to disk and releases the data
// dir's lock. Close is idempotent; calls after the first do nothing and
// return the first call's error.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		b.cluster.Close()
		if b.lock != nil {
			if err := b.lock.Close(); err != nil {
				b.closeErr = fmt.Errorf("release the lock of the embedded broker's data dir: %w", err)
			}
		}
	})
	return b.closeErr
}

// lockFile is the name of the lock file in a data dir (the name Pebble
// gives its own).
const lockFile = "LOCK"

// lockDataDir creates dir if needed and takes the lock of its LOCK file.
// flag names the flag that picks another dir.
func lockDataDir(dir, flag string) (io.Closer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create the embedded broker's data dir %s: %w", dir, err)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded broker data dir %s: %w", dir, err)
	}
	// Pebble's lock: fcntl locks on Unix (LockFileEx on Windows), plus a
	// table of the files this process holds, since fcntl locks do not
	// exclude the process that holds them.
	l, err := vfs.Default.Lock(filepath.Join(abs, lockFile))
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("create the lock file of the embedded broker's data dir %s: %w", dir, err)
		}
		return nil, &inUseError{
			msg:      fmt.Sprintf("the embedded broker's data dir %s is in use by another broker: stop it, or use another %s", dir, flag),
			sentinel: ErrDataDirInUse, cause: err,
		}
	}
	return l, nil
}

// parseAddr splits hostport into the host to bind and the port, validating
// both.
func parseAddr(hostport string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(hostport)
	if err != nil {
		return "", 0, fmt.Errorf("invalid address: %w", err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("invalid port %q: want a number between 0 and 65535", portStr)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "", 0, fmt.Errorf("cannot listen on wildcard host %s: the broker advertises its listen address to clients; use a loopback or interface address", host)
	}
	return host, port, nil
}

// slogAdapter implements kfake.Logger on top of an [slog.Logger].
type slogAdapter struct{ l *slog.Logger }

// Logf implements kfake.Logger.
func (a slogAdapter) Logf(level kfake.LogLevel, format string, args ...any) {
	var sl slog.Level
	switch level {
	case kfake.LogLevelError:
		sl = slog.LevelError
	case kfake.LogLevelWarn:
		sl = slog.LevelWarn
	case kfake.LogLevelInfo:
		sl = slog.LevelDebug
	case kfake.LogLevelDebug:
		sl = slog.LevelDebug - 4
	default:
		return
	}
	ctx := context.Background()
	if !a.l.Enabled(ctx, sl) {
		return
	}
	a.l.Log(ctx, sl, fmt.Sprintf(format, args...), "component", "kfake")
}
