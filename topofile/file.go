package topofile

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lovoo/goka"
	"github.com/weftstream/weft/internal/yamlpos"
	"github.com/weftstream/weft/kafkaclient"
	"github.com/weftstream/weft/processors"
	"github.com/weftstream/weft/topology"
	"gopkg.in/yaml.v3"
)

// Topology files (docs/topology-format.md) are loaded into a File: the
// application's settings and its Topology, built with the Builder DSL.
//
// Every mistake is reported with its position (file:line:col), and all of
// them are reported at once: Load returns ConfigErrors.

// On-error policies of a topology file.
const (
	OnErrorDeadLetter = "dead_letter" // bad records go to the group's dead-letter topic
	OnErrorStop       = "stop"        // the processor stops
)

// File is a loaded topology file.
type File struct {
	// Name is the file name errors refer to.
	Name string
	App  string
	// Brokers are the configured brokers, environment references
	// expanded and comma-separated lists split (empty: the embedded
	// broker, or --brokers).
	Brokers []string
	// SASL are the sasl settings (Mechanism "" means none), upper case.
	SASL kafkaclient.SASL
	// OnError is OnErrorDeadLetter (the default) or OnErrorStop.
	OnError string
	// SampleRatio is tracing.sample_ratio (nil: not set).
	SampleRatio *float64
	// CacheMaxBytes is cache_max_bytes, the record cache budget of each
	// group's table (nil: not set; 0 turns the cache off; see
	// processors.WithRecordCache); CommitInterval is commit_interval, how
	// often the cache flushes (0: not set).
	CacheMaxBytes  *int64
	CommitInterval time.Duration
	// Lineage is lineage: {versions: N, retention: 7d}, what the lineage
	// index of every table keeps: the last N versions of a key (0: not
	// set), as far back as retention (0: not set; see serve).
	Lineage struct {
		Versions  int
		Retention time.Duration
	}
	// Streams and Tables are the declared inputs, in file order.
	Streams []Source
	Tables  []Source
	// Pipelines are the declared pipelines, in file order.
	Pipelines []Pipeline
	// Outputs are the topics the `to` steps write (Name: the pipeline).
	Outputs []Source
	// Topology is the topology the pipelines describe; it compiles with
	// Compile.
	Topology *topology.Topology

	// at is where the file declares a node: the step that makes a table,
	// a join or a suppress, the stream of a source.
	at map[*topology.Node]*yaml.Node
}

// RecordCache is the record cache the file asks for each group's table
// (processors.WithRecordCache): cache_max_bytes and commit_interval, the
// processors' defaults (DefaultCacheMaxBytes, DefaultCommitInterval) where
// the file does not set them. A nil File asks for the defaults.
func (f *File) RecordCache() (maxBytes int64, commitInterval time.Duration) {
	maxBytes, commitInterval = processors.DefaultCacheMaxBytes, processors.DefaultCommitInterval
	if f == nil {
		return maxBytes, commitInterval
	}
	if f.CacheMaxBytes != nil {
		maxBytes = *f.CacheMaxBytes
	}
	if f.CommitInterval > 0 {
		commitInterval = f.CommitInterval
	}
	return maxBytes, commitInterval
}

// Source is a topic a topology file reads or writes, with its codec name.
type Source struct {
	Name, Topic, Codec string
}

// Pipeline describes a pipeline of a topology file.
type Pipeline struct {
	Name string
	// From is what the pipeline reads: a stream, a pipeline or
	// "table:<pipeline>".
	From string
	// Steps are the kinds of its steps (filter, map_values, ...).
	Steps []string
	// Branches are the pipelines its branch step creates.
	Branches []string
	// Table is true when the pipeline ends in an aggregation or latest:
	// its table is named like the pipeline (group <app>-<name>).
	Table     bool
	Line, Col int
}

// LoadFile reads and loads the topology file at path.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Load(path, data)
}

// Load loads a topology file named name (for error messages) from data.
// The error is ConfigErrors when the file has mistakes.
func Load(name string, data []byte) (f *File, err error) {
	l := &loader{Reader: yamlpos.NewReader(name, data), env: os.LookupEnv}
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, ConfigErrors{{File: name, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error: %v", r)}}
		}
	}()
	f = l.load()
	if l.Failed() {
		return nil, l.Errors()
	}
	return f, nil
}

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	topKeys      = []string{"app", "brokers", "sasl", "on_error", "tracing", "cache_max_bytes", "commit_interval", "lineage", "streams", "tables", "pipelines"}
	sourceKeys   = []string{"topic", "codec", "timestamp", "sample_ratio"}
	pipelineKeys = []string{"name", "from", "steps"}
	saslKeys     = []string{"mechanism", "user", "password"}
	onErrors     = []string{OnErrorDeadLetter, OnErrorStop}
)

func (l *loader) load() *File {
	f := &File{Name: l.File(), OnError: OnErrorDeadLetter}
	root := l.Document("a topology file", "empty file: a topology needs app, streams and pipelines")
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.Errorf(root, "a topology file must be a mapping (app, streams, pipelines, ...), found %s", yamlpos.KindName(root))
		return nil
	}
	top, _ := l.fields(root, nil, "the topology file", topKeys...)
	b := &build{f: f, names: map[string]*target{}, tableByNm: map[string]*sourceSpec{},
		nodeNames: map[string]nodeName{}, sinks: map[string]*yaml.Node{}}

	if e, ok := l.require(top, "app", root, "the topology file"); ok {
		if s, ok := l.str(e, "app"); ok {
			if l.checkName(e.V, s, "app") {
				f.App = s
			}
		}
	}
	if e, ok := top["brokers"]; ok {
		f.Brokers = l.brokers(e)
	}
	if e, ok := top["sasl"]; ok {
		f.SASL = l.sasl(e)
	}
	if e, ok := top["on_error"]; ok {
		if s, ok := l.str(e, "on_error"); ok {
			if contains(onErrors, s) {
				f.OnError = s
			} else {
				l.Errorf(e.V, "on_error must be dead_letter or stop, not %q%s", s, didYouMean(s, onErrors))
			}
		}
	}
	if e, ok := top["tracing"]; ok {
		tr, _ := l.fields(e.V, e.K, "tracing", "sample_ratio")
		if e, ok := tr["sample_ratio"]; ok {
			f.SampleRatio = l.ratio(e)
		}
	}
	if e, ok := top["cache_max_bytes"]; ok {
		f.CacheMaxBytes = l.byteSize(e, "cache_max_bytes")
	}
	if e, ok := top["commit_interval"]; ok {
		f.CommitInterval = l.duration(e, "commit_interval", true)
	}
	if e, ok := top["lineage"]; ok {
		l.lineage(e, f)
	}
	if e, ok := top["streams"]; ok {
		b.streams = l.sources(e, "stream")
		topics := map[string]*sourceSpec{}
		for _, s := range b.streams {
			if s.topic != "" {
				if prev, dup := topics[s.topic]; dup {
					l.Errorf(s.key, "stream %s reads topic %q like stream %s (line %d): declare a topic once", s.name, s.topic, prev.name, prev.key.Line)
				} else {
					topics[s.topic] = s
					b.nodeName(l, "source-"+s.topic, "stream "+s.name, s.key)
				}
			}
			b.names[s.name] = &target{what: "stream", node: s.key, src: s}
			f.Streams = append(f.Streams, Source{Name: s.name, Topic: s.topic, Codec: s.codecName})
		}
	}
	if e, ok := top["tables"]; ok {
		b.tables = l.sources(e, "table")
		topics := map[string]*sourceSpec{}
		for _, t := range b.tables {
			if t.topic != "" {
				if prev, dup := topics[t.topic]; dup {
					l.Errorf(t.key, "table %s reads topic %q like table %s (line %d): declare a topic once", t.name, t.topic, prev.name, prev.key.Line)
				} else {
					topics[t.topic] = t
					b.nodeName(l, "table-"+t.topic, "table "+t.name, t.key)
				}
			}
			b.tableByNm[t.name] = t
			f.Tables = append(f.Tables, Source{Name: t.name, Topic: t.topic, Codec: t.codecName})
		}
	}
	if e, ok := l.require(top, "pipelines", root, "the topology file"); ok {
		b.pipesNode = e.K
		l.pipelines(b, e)
	}
	if f.App == "" || l.Failed() {
		return nil
	}
	return l.buildTopology(b)
}

// byteSize reads a number of bytes: an integer, optionally with the
// suffix KiB, MiB or GiB.
func (l *loader) byteSize(e kv, what string) *int64 {
	s, ok := l.str(e, what)
	if !ok {
		return nil
	}
	num, mult := s, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, found := strings.CutSuffix(s, u.suffix); found {
			num, mult = strings.TrimSpace(n), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		l.Errorf(e.V, "%s must be a number of bytes (e.g. 10485760 or 10MiB; 0 turns the cache off), not %q", what, s)
		return nil
	}
	n *= mult
	return &n
}

// ratio reads a sample ratio (a number from 0 to 1).
func (l *loader) ratio(e kv) *float64 {
	s, ok := l.str(e, "sample_ratio")
	if !ok {
		return nil
	}
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || r > 1 {
		l.Errorf(e.V, "sample_ratio must be a number from 0 to 1, not %q", s)
		return nil
	}
	return &r
}

// checkName reports a name that cannot be part of topic and group names.
func (l *loader) checkName(n *yaml.Node, s, what string) bool {
	if !nameRE.MatchString(s) || s == "." || s == ".." || len(s) > 200 {
		l.Errorf(n, "%s %q: names may only contain letters, digits, '.', '_' and '-' (they become part of topic names)", what, s)
		return false
	}
	return true
}

// checkTopic reports an invalid Kafka topic name.
func (l *loader) checkTopic(n *yaml.Node, s string) bool {
	if err := kafkaclient.ValidateTopicName(s); err != nil {
		l.Errorf(n, "%v", err)
		return false
	}
	return true
}

// expand replaces ${NAME} by the environment variable NAME ($$ is $).
func (l *loader) expand(n *yaml.Node, s, what string) (string, bool) {
	if !strings.Contains(s, "$") {
		return s, true
	}
	var b strings.Builder
	ok := true
	runeOff := func(byteOff int) int { return len([]rune(s[:byteOff])) }
	for i := 0; i < len(s); {
		if s[i] == '$' && i+1 < len(s) {
			switch s[i+1] {
			case '$':
				b.WriteByte('$')
				i += 2
				continue
			case '{':
				line, col, _ := l.PosIn(n, runeOff(i))
				end := strings.IndexByte(s[i+2:], '}')
				if end < 0 {
					l.ErrorAt(line, col, "%s: unterminated ${ (write ${NAME}, or $$ for a $)", what)
					return "", false
				}
				name := s[i+2 : i+2+end]
				i += 3 + end
				if !envNameRE.MatchString(name) {
					l.ErrorAt(line, col, "%s: %q is not an environment variable name", what, name)
					ok = false
					continue
				}
				v, set := l.env(name)
				if !set {
					l.ErrorAt(line, col, "%s: environment variable %s is not set", what, name)
					ok = false
					continue
				}
				b.WriteString(v)
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String(), ok
}

// brokers reads the broker list: a list of strings or one string, with
// environment references; entries may be comma-separated lists.
func (l *loader) brokers(e kv) []string {
	var items []*yaml.Node
	switch {
	case yamlpos.IsNull(e.V):
		return nil
	case e.V.Kind == yaml.ScalarNode:
		items = []*yaml.Node{e.V}
	case e.V.Kind == yaml.SequenceNode:
		for _, c := range e.V.Content {
			if c = l.Resolve(c); c != nil {
				items = append(items, c)
			}
		}
	default:
		l.Errorf(e.V, "brokers must be a list of host:port, found %s", yamlpos.KindName(e.V))
		return nil
	}
	var out []string
	for _, it := range items {
		s, ok := l.str(kv{K: e.K, V: it}, "a broker")
		if !ok {
			continue
		}
		s, ok = l.expand(it, s, "brokers")
		if !ok {
			continue
		}
		for _, part := range strings.Split(s, ",") {
			if part = strings.TrimSpace(part); part != "" {
				out = append(out, part)
			}
		}
	}
	return out
}

func (l *loader) sasl(e kv) kafkaclient.SASL {
	var s kafkaclient.SASL
	m, ok := l.fields(e.V, e.K, "sasl", saslKeys...)
	if !ok {
		return s
	}
	get := func(key string) string {
		f, ok := l.require(m, key, e.K, "sasl")
		if !ok {
			return ""
		}
		v, ok := l.str(f, "sasl "+key)
		if !ok {
			return ""
		}
		v, _ = l.expand(f.V, v, "sasl "+key)
		return v
	}
	s.Mechanism = get("mechanism")
	s.User = get("user")
	s.Password = get("password")
	if f, ok := m["mechanism"]; ok && s.Mechanism != "" && !kafkaclient.SupportedSASLMechanism(s.Mechanism) {
		l.Errorf(f.V, "sasl mechanism %q is not supported (use %s)", s.Mechanism, kafkaclient.SASLMechanisms)
	}
	s.Mechanism = strings.ToUpper(s.Mechanism)
	return s
}

// codec reads the optional codec key (default json).
func (l *loader) codec(m map[string]kv) (goka.Codec, string) {
	e, ok := m["codec"]
	if !ok {
		return topology.JSON{}, "json"
	}
	s, ok := l.str(e, "codec")
	if !ok {
		return topology.JSON{}, "json"
	}
	c, err := topology.CodecByName(s)
	if err != nil {
		if hint := didYouMean(s, topology.CodecNames()); hint != "" {
			l.Errorf(e.V, "unknown codec %q%s", s, hint)
		} else {
			l.Errorf(e.V, "unknown codec %q (codecs: %s)", s, strings.Join(topology.CodecNames(), ", "))
		}
		return topology.JSON{}, "json"
	}
	return c, s
}

// duration reads a duration (positive, or at least 0).
func (l *loader) duration(e kv, what string, positive bool) time.Duration {
	v, ok := l.str(e, what)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		l.Errorf(e.V, "%s: bad duration %q (write e.g. 500ms, 10s, 1m)", what, v)
	case positive && d <= 0:
		l.Errorf(e.V, "%s: the duration must be positive, not %s", what, v)
	case d < 0:
		l.Errorf(e.V, "%s: the duration must not be negative, not %s", what, v)
	default:
		return d
	}
	return 0
}

// lineage reads lineage: {versions, retention}.
func (l *loader) lineage(e kv, f *File) {
	lin, _ := l.fields(e.V, e.K, "lineage", "versions", "retention")
	if v, ok := lin["versions"]; ok {
		if s, ok := l.str(v, "lineage.versions"); ok {
			if n, err := strconv.Atoi(s); err != nil || n < 1 {
				l.Errorf(v.V, "lineage.versions must be a whole number of at least 1, not %q", s)
			} else {
				f.Lineage.Versions = n
			}
		}
	}
	if v, ok := lin["retention"]; ok {
		if s, ok := l.str(v, "lineage.retention"); ok {
			days, isDays := strings.CutSuffix(s, "d")
			n, err := strconv.ParseFloat(days, 64)
			if d, derr := time.ParseDuration(s); isDays && err == nil && n > 0 {
				f.Lineage.Retention = time.Duration(n * float64(24*time.Hour))
			} else if derr == nil && d > 0 {
				f.Lineage.Retention = d
			} else {
				l.Errorf(v.V, "lineage.retention: bad duration %q (write e.g. 7d, 36h, 90m)", s)
			}
		}
	}
}
