package topology

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/weftstream/weft/kafkaclient"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lovoo/goka"
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
	SASL    SASL
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
	Topology *Topology

	// at is where the file declares a node: the step that makes a table,
	// a join or a suppress, the stream of a source.
	at map[*Node]*yaml.Node
}

// SASL are the SASL settings of a topology file (Mechanism "" means none).
type SASL struct {
	Mechanism, User, Password string
}

// String describes the settings without the password.
func (s SASL) String() string {
	if s.Mechanism == "" {
		return "none"
	}
	return fmt.Sprintf("%s user %s password [redacted]", s.Mechanism, s.User)
}

// GoString describes the settings without the password.
func (s SASL) GoString() string { return "topology.SASL{" + s.String() + "}" }

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
	l := &loader{file: name, data: data, env: os.LookupEnv}
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, ConfigErrors{{File: name, Line: 1, Col: 1, Msg: fmt.Sprintf("internal error: %v", r)}}
		}
	}()
	f = l.load()
	if len(l.errs) > 0 {
		l.errs.sort()
		return nil, l.errs
	}
	return f, nil
}

var (
	nameRE       = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	yamlErrorRE  = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	envNameRE    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	topKeys      = []string{"app", "brokers", "sasl", "on_error", "tracing", "cache_max_bytes", "commit_interval", "lineage", "streams", "tables", "pipelines"}
	sourceKeys   = []string{"topic", "codec", "timestamp", "sample_ratio"}
	pipelineKeys = []string{"name", "from", "steps"}
	saslKeys     = []string{"mechanism", "user", "password"}
	mechanisms   = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	onErrors     = []string{OnErrorDeadLetter, OnErrorStop}
)

// Step kinds of topology files.
var stepKinds = []string{
	"filter", "map_values", "select_key", "map", "flat_map", "join", "branch", "to",
	"group_by_key", "group_by", "window", "count", "reduce", "aggregate", "latest", "suppress",
	"join_table",
}

type sourceSpec struct {
	name      string
	key       *yaml.Node
	topic     string
	codec     goka.Codec
	codecName string
	timestamp *celExpr // streams: the event time (nil: record timestamps)
	ratio     *float64 // streams: the trace sample ratio (nil: the file's)
	stream    *Stream  // built on first use
	table     *Table
}

type outKind int

const (
	outStream outKind = iota // ends in a stateless step: readable with from
	outSink                  // ends in to: readable (the records written)
	outBranch                // ends in branch: read its branches
	outTable                 // ends in an aggregation: read with table:
)

type pipeSpec struct {
	name      string
	nameNode  *yaml.Node
	node      *yaml.Node
	from      string
	fromNode  *yaml.Node
	fromTable bool
	steps     []*stepSpec
	out       outKind
	reads     *pipeSpec // the pipeline read (nil: a stream)
	readsBr   *branchSpec
	readsSrc  *sourceSpec
	branches  []*branchSpec

	state        int // DFS colour for cycles
	updatesNamed bool

	// built
	built   bool
	end     *Stream
	table   *Table
	updates *Stream
}

type branchSpec struct {
	name     string
	nameNode *yaml.Node
	when     *celExpr
	owner    *pipeSpec
	index    int
	end      *Stream
}

type stepSpec struct {
	kind      string
	key, val  *yaml.Node
	index     int
	expr      *celExpr // the expression (map: the key; aggregate: add)
	expr2     *celExpr // map: the value
	initial   any
	table     string
	tableNode *yaml.Node
	joinPipe  *pipeSpec // join: the table pipeline of this topology it reads
	topic     string
	codec     goka.Codec
	codecName string
	every     time.Duration
	untilWin  bool // suppress until window_close
	windows   Windows
}

// target is what a name in `from` refers to.
type target struct {
	what   string // "stream", "pipeline" or "branch"
	node   *yaml.Node
	src    *sourceSpec
	pipe   *pipeSpec
	branch *branchSpec
}

// nodeName is a node name of the built topology, registered to report
// collisions (the Builder requires unique names) at a position.
type nodeName struct {
	what string
	node *yaml.Node
}

type build struct {
	f         *File
	streams   []*sourceSpec
	tables    []*sourceSpec
	pipes     []*pipeSpec
	names     map[string]*target
	tableByNm map[string]*sourceSpec
	nodeNames map[string]nodeName
	sinks     map[string]*yaml.Node
	pipesNode *yaml.Node
}

func (l *loader) load() *File {
	f := &File{Name: l.file, OnError: OnErrorDeadLetter}
	dec := yaml.NewDecoder(bytes.NewReader(l.data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.errAt(1, 1, "empty file: a topology needs app, streams and pipelines")
		} else {
			l.yamlError(err)
		}
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		l.errf(&extra, "a topology file holds one YAML document")
	} else if !errors.Is(err, io.EOF) {
		l.yamlError(err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			l.errAt(1, 1, "empty file: a topology needs app, streams and pipelines")
			return nil
		}
		root = l.resolve(root.Content[0])
	}
	if root == nil {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		l.errf(root, "a topology file must be a mapping (app, streams, pipelines, ...), found %s", kindName(root))
		return nil
	}
	top, _ := l.fields(root, nil, "the topology file", topKeys...)
	b := &build{f: f, names: map[string]*target{}, tableByNm: map[string]*sourceSpec{},
		nodeNames: map[string]nodeName{}, sinks: map[string]*yaml.Node{}}

	if e, ok := l.require(top, "app", root, "the topology file"); ok {
		if s, ok := l.str(e, "app"); ok {
			if l.checkName(e.v, s, "app") {
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
				l.errf(e.v, "on_error must be dead_letter or stop, not %q%s", s, didYouMean(s, onErrors))
			}
		}
	}
	if e, ok := top["tracing"]; ok {
		tr, _ := l.fields(e.v, e.k, "tracing", "sample_ratio")
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
		lin, _ := l.fields(e.v, e.k, "lineage", "versions", "retention")
		if v, ok := lin["versions"]; ok {
			if s, ok := l.str(v, "lineage.versions"); ok {
				if n, err := strconv.Atoi(s); err != nil || n < 1 {
					l.errf(v.v, "lineage.versions must be a whole number of at least 1, not %q", s)
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
					l.errf(v.v, "lineage.retention: bad duration %q (write e.g. 7d, 36h, 90m)", s)
				}
			}
		}
	}
	if e, ok := top["streams"]; ok {
		b.streams = l.sources(e, "stream")
		topics := map[string]*sourceSpec{}
		for _, s := range b.streams {
			if s.topic != "" {
				if prev, dup := topics[s.topic]; dup {
					l.errf(s.key, "stream %s reads topic %q like stream %s (line %d): declare a topic once", s.name, s.topic, prev.name, prev.key.Line)
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
					l.errf(t.key, "table %s reads topic %q like table %s (line %d): declare a topic once", t.name, t.topic, prev.name, prev.key.Line)
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
		b.pipesNode = e.k
		l.pipelines(b, e)
	}
	if f.App == "" || len(l.errs) > 0 {
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
		l.errf(e.v, "%s must be a number of bytes (e.g. 10485760 or 10MiB; 0 turns the cache off), not %q", what, s)
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
		l.errf(e.v, "sample_ratio must be a number from 0 to 1, not %q", s)
		return nil
	}
	return &r
}

// yamlError reports a YAML syntax error.
func (l *loader) yamlError(err error) {
	msg := err.Error()
	if m := yamlErrorRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		if strings.HasPrefix(m[2], "did not find expected") || strings.HasPrefix(m[2], "found duplicate %") ||
			m[2] == "found incompatible YAML document" || m[2] == "found undefined tag handle" {
			// yaml.v3 reports the 0-based line of parser (not scanner)
			// errors: the line where the construct that failed starts.
			line++
		}
		l.errAt(line, 1, "YAML: %s", m[2])
		return
	}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		for _, e := range te.Errors {
			l.errAt(1, 1, "YAML: %s", strings.TrimPrefix(e, "yaml: "))
		}
		return
	}
	l.errAt(1, 1, "YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// checkName reports a name that cannot be part of topic and group names.
func (l *loader) checkName(n *yaml.Node, s, what string) bool {
	if !nameRE.MatchString(s) || s == "." || s == ".." || len(s) > 200 {
		l.errf(n, "%s %q: names may only contain letters, digits, '.', '_' and '-' (they become part of topic names)", what, s)
		return false
	}
	return true
}

// checkTopic reports an invalid Kafka topic name.
func (l *loader) checkTopic(n *yaml.Node, s string) bool {
	if err := kafkaclient.ValidateTopicName(s); err != nil {
		l.errf(n, "%v", err)
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
				line, col, _ := l.posIn(n, runeOff(i))
				end := strings.IndexByte(s[i+2:], '}')
				if end < 0 {
					l.errAt(line, col, "%s: unterminated ${ (write ${NAME}, or $$ for a $)", what)
					return "", false
				}
				name := s[i+2 : i+2+end]
				i += 3 + end
				if !envNameRE.MatchString(name) {
					l.errAt(line, col, "%s: %q is not an environment variable name", what, name)
					ok = false
					continue
				}
				v, set := l.env(name)
				if !set {
					l.errAt(line, col, "%s: environment variable %s is not set", what, name)
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
	case isNull(e.v):
		return nil
	case e.v.Kind == yaml.ScalarNode:
		items = []*yaml.Node{e.v}
	case e.v.Kind == yaml.SequenceNode:
		for _, c := range e.v.Content {
			if c = l.resolve(c); c != nil {
				items = append(items, c)
			}
		}
	default:
		l.errf(e.v, "brokers must be a list of host:port, found %s", kindName(e.v))
		return nil
	}
	var out []string
	for _, it := range items {
		s, ok := l.str(kv{k: e.k, v: it}, "a broker")
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

func (l *loader) sasl(e kv) SASL {
	var s SASL
	m, ok := l.fields(e.v, e.k, "sasl", saslKeys...)
	if !ok {
		return s
	}
	get := func(key string) string {
		f, ok := l.require(m, key, e.k, "sasl")
		if !ok {
			return ""
		}
		v, ok := l.str(f, "sasl "+key)
		if !ok {
			return ""
		}
		v, _ = l.expand(f.v, v, "sasl "+key)
		return v
	}
	s.Mechanism = get("mechanism")
	s.User = get("user")
	s.Password = get("password")
	if f, ok := m["mechanism"]; ok && s.Mechanism != "" && !contains(mechanisms, strings.ToUpper(s.Mechanism)) {
		l.errf(f.v, "sasl mechanism %q is not supported (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
	}
	s.Mechanism = strings.ToUpper(s.Mechanism)
	return s
}

// sources reads the streams or tables section.
func (l *loader) sources(e kv, what string) []*sourceSpec {
	if isNull(e.v) {
		return nil
	}
	if e.v.Kind != yaml.MappingNode {
		l.errf(e.v, "%ss must be a mapping of names to {topic, codec}, found %s", what, kindName(e.v))
		return nil
	}
	var out []*sourceSpec
	for _, en := range l.entries(e.v) {
		s := &sourceSpec{name: en.k.Value, key: en.k}
		desc := what + " " + s.name
		l.checkName(en.k, s.name, what+" name")
		m, ok := l.fields(en.v, en.k, desc, sourceKeys...)
		if ok {
			if t, ok := l.require(m, "topic", en.k, desc); ok {
				if topic, ok := l.str(t, "topic"); ok && l.checkTopic(t.v, topic) {
					s.topic = topic
				}
			}
			s.codec, s.codecName = l.codec(m)
			if e, ok := m["timestamp"]; ok {
				if what == "stream" {
					s.timestamp = l.cel(e, "timestamp", varsRecord, wantTime)
				} else {
					l.errf(e.k, "timestamp is for streams: a table's values keep the event time of their writers")
				}
			}
			if e, ok := m["sample_ratio"]; ok {
				if what == "stream" {
					s.ratio = l.ratio(e)
				} else {
					l.errf(e.k, "sample_ratio is for streams: traces start where records enter the topology")
				}
			}
		}
		out = append(out, s)
	}
	return out
}

// codec reads the optional codec key (default json).
func (l *loader) codec(m map[string]kv) (goka.Codec, string) {
	e, ok := m["codec"]
	if !ok {
		return JSON{}, "json"
	}
	s, ok := l.str(e, "codec")
	if !ok {
		return JSON{}, "json"
	}
	c, err := CodecByName(s)
	if err != nil {
		if hint := didYouMean(s, CodecNames()); hint != "" {
			l.errf(e.v, "unknown codec %q%s", s, hint)
		} else {
			l.errf(e.v, "unknown codec %q (codecs: %s)", s, strings.Join(CodecNames(), ", "))
		}
		return JSON{}, "json"
	}
	return c, s
}

// nodeName registers a node name of the topology to be built.
func (b *build) nodeName(l *loader, name, what string, at *yaml.Node) {
	if prev, ok := b.nodeNames[name]; ok {
		l.errf(at, "%s would be named %q like %s (line %d): rename one of them", what, name, prev.what, prev.node.Line)
		return
	}
	b.nodeNames[name] = nodeName{what: what, node: at}
}

// pipelines reads the pipelines section and checks the references between
// pipelines.
func (l *loader) pipelines(b *build, e kv) {
	if isNull(e.v) || e.v.Kind != yaml.SequenceNode {
		l.errf(orAt(e.v, e.k), "pipelines must be a list, found %s", kindName(e.v))
		return
	}
	if len(e.v.Content) == 0 {
		l.errf(e.k, "pipelines is empty: the topology does nothing")
		return
	}
	for _, item := range e.v.Content {
		if item = l.resolve(item); item == nil {
			return
		}
		if p := l.pipeline(b, item); p != nil {
			b.pipes = append(b.pipes, p)
		}
	}
	for _, p := range b.pipes {
		l.resolveFrom(b, p)
		l.resolveJoins(b, p)
		l.checkSuppress(p)
	}
	l.cycles(b)
	does := false
	for _, p := range b.pipes {
		for _, s := range p.steps {
			switch s.kind {
			case "to", "count", "reduce", "aggregate", "latest":
				does = true
			}
		}
		info := Pipeline{Name: p.name, From: p.from, Table: p.out == outTable, Line: p.node.Line, Col: p.node.Column}
		for _, s := range p.steps {
			info.Steps = append(info.Steps, s.kind)
		}
		for _, br := range p.branches {
			info.Branches = append(info.Branches, br.name)
		}
		b.f.Pipelines = append(b.f.Pipelines, info)
	}
	if !does && len(l.errs) == 0 {
		l.errf(e.k, "the topology does nothing: no pipeline has a to step or an aggregation")
	}
}

// declare declares a name that `from` may read (pipelines and branches
// share the namespace of streams); it reports a name used twice.
func (l *loader) declare(b *build, name string, t *target) bool {
	if prev, ok := b.names[name]; ok {
		l.errf(t.node, "name %q is already used by %s %s (line %d)", name, prev.what, name, prev.node.Line)
		return false
	}
	b.names[name] = t
	return true
}

// pipeline reads one pipeline.
func (l *loader) pipeline(b *build, n *yaml.Node) *pipeSpec {
	p := &pipeSpec{node: n}
	what := "a pipeline"
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if k, v := n.Content[i], n.Content[i+1]; k.Value == "name" && v.Kind == yaml.ScalarNode && v.Value != "" {
				what = "pipeline " + v.Value
				break
			}
		}
	}
	m, ok := l.fields(n, n, what, pipelineKeys...)
	if !ok {
		return nil
	}
	if e, ok := l.require(m, "name", n, what); ok {
		if s, ok := l.str(e, "name"); ok {
			p.nameNode = e.v
			if l.checkName(e.v, s, "pipeline name") && l.declare(b, s, &target{what: "pipeline", node: e.v, pipe: p}) {
				p.name = s
			}
		}
	}
	if e, ok := l.require(m, "from", n, what); ok {
		if s, ok := l.str(e, "from"); ok {
			p.from, p.fromNode = s, e.v
			if rest, ok := strings.CutPrefix(s, "table:"); ok {
				p.fromTable = true
				p.from = "table:" + strings.TrimSpace(rest)
			}
		}
	}
	e, ok := l.require(m, "steps", n, what)
	if !ok {
		return p
	}
	if isNull(e.v) || e.v.Kind != yaml.SequenceNode {
		l.errf(orAt(e.v, e.k), "steps of %s must be a list, found %s", what, kindName(e.v))
		return p
	}
	if len(e.v.Content) == 0 {
		l.errf(e.k, "%s has no steps", what)
		return p
	}
	complete := true
	for i, item := range e.v.Content {
		if item = l.resolve(item); item == nil {
			return p
		}
		if s := l.step(b, p, i, item); s != nil {
			p.steps = append(p.steps, s)
		} else {
			complete = false
		}
	}
	if complete {
		l.order(p)
	}
	if len(p.steps) > 0 {
		switch p.steps[len(p.steps)-1].kind {
		case "to":
			p.out = outSink
		case "branch":
			p.out = outBranch
		case "count", "reduce", "aggregate", "latest", "join_table":
			p.out = outTable
		}
	}
	if p.name != "" {
		for _, s := range p.steps {
			switch s.kind {
			case "count", "reduce", "aggregate", "latest", "join_table":
				b.nodeName(l, p.name, "the table of pipeline "+p.name, p.nameNode)
			case "branch":
				for j := range p.branches {
					b.nodeName(l, fmt.Sprintf("%s-%d", stepName(p.name, s), j), "branch of pipeline "+p.name, s.key)
				}
			case "group_by_key", "to":
			default:
				b.nodeName(l, stepName(p.name, s), "step "+s.kind+" of pipeline "+p.name, s.key)
			}
		}
	}
	return p
}

func stepName(pipeline string, s *stepSpec) string {
	return fmt.Sprintf("%s.%d.%s", pipeline, s.index, s.kind)
}

// step reads step i of pipeline p.
func (l *loader) step(b *build, p *pipeSpec, i int, n *yaml.Node) *stepSpec {
	if n.Kind != yaml.MappingNode {
		l.errf(n, "a step must be a mapping like {filter: \"...\"}, found %s", kindName(n))
		return nil
	}
	es := l.entries(n)
	if len(es) == 0 {
		l.errf(n, "empty step")
		return nil
	}
	if len(es) > 1 {
		l.errf(es[1].k, "a step has one operation, found %s and %s (start a new step with -)", es[0].k.Value, es[1].k.Value)
	}
	s := &stepSpec{kind: es[0].k.Value, key: es[0].k, val: es[0].v, index: i}
	if !contains(stepKinds, s.kind) {
		if hint := didYouMean(s.kind, stepKinds); hint != "" {
			l.errf(s.key, "unknown step %q%s", s.kind, hint)
		} else {
			l.errf(s.key, "unknown step %q (steps: %s)", s.kind, strings.Join(stepKinds, ", "))
		}
		return nil
	}
	e := kv{k: s.key, v: s.val}
	switch s.kind {
	case "filter":
		s.expr = l.cel(e, s.kind, varsRecord, wantBool)
	case "map_values":
		s.expr = l.cel(e, s.kind, varsRecord, wantAny)
	case "select_key", "group_by":
		s.expr = l.cel(e, s.kind, varsRecord, wantString)
	case "flat_map":
		s.expr = l.cel(e, s.kind, varsRecord, wantList)
	case "map":
		m, ok := l.fields(s.val, s.key, "map", "key", "value")
		if ok {
			if f, ok := l.require(m, "key", s.key, "map"); ok {
				s.expr = l.cel(f, "map key", varsRecord, wantString)
			}
			if f, ok := l.require(m, "value", s.key, "map"); ok {
				s.expr2 = l.cel(f, "map value", varsRecord, wantAny)
			}
		}
	case "join":
		m, ok := l.fields(s.val, s.key, "join", "table", "value")
		if ok {
			if f, ok := l.require(m, "table", s.key, "join"); ok {
				if t, ok := l.str(f, "join table"); ok {
					s.table, s.tableNode = t, f.v // checked by resolveJoins
				}
			}
			if f, ok := l.require(m, "value", s.key, "join"); ok {
				s.expr = l.cel(f, "join value", varsJoin, wantAny)
			}
		}
	case "join_table":
		m, ok := l.fields(s.val, s.key, "join_table", "table", "value", "codec")
		if ok {
			if f, ok := l.require(m, "table", s.key, "join_table"); ok {
				if t, ok := l.str(f, "join_table table"); ok {
					s.table, s.tableNode = t, f.v // checked by resolveJoins
				}
			}
			if f, ok := l.require(m, "value", s.key, "join_table"); ok {
				s.expr = l.cel(f, "join_table value", varsJoin, wantAny)
			}
			s.codec, s.codecName = l.codec(m)
		}
	case "branch":
		l.branches(b, p, s)
	case "to":
		m, ok := l.fields(s.val, s.key, "to", "topic", "codec")
		if ok {
			if f, ok := l.require(m, "topic", s.key, "to"); ok {
				if t, ok := l.str(f, "topic"); ok && l.checkTopic(f.v, t) {
					s.topic = t
					if prev, dup := b.sinks[t]; dup {
						l.errf(f.v, "topic %q is already written by the to step at line %d: a topology writes a topic from one to step", t, prev.Line)
					} else {
						b.sinks[t] = f.v
						b.nodeName(l, "to-"+t, "the to step", f.v)
					}
				}
			}
			s.codec, s.codecName = l.codec(m)
			if s.topic != "" {
				b.f.Outputs = append(b.f.Outputs, Source{Name: p.name, Topic: s.topic, Codec: s.codecName})
			}
		}
	case "group_by_key", "count":
		l.fields(s.val, s.key, s.kind)
	case "latest":
		m, ok := l.fields(s.val, s.key, s.kind, "codec")
		if ok {
			s.codec, s.codecName = l.codec(m)
		}
	case "reduce":
		m, ok := l.fields(s.val, s.key, s.kind, "expr", "codec")
		if ok {
			if f, ok := l.require(m, "expr", s.key, "reduce"); ok {
				s.expr = l.cel(f, "reduce expr", varsReduce, wantAny)
			}
			s.codec, s.codecName = l.codec(m)
		}
	case "aggregate":
		m, ok := l.fields(s.val, s.key, s.kind, "initial", "add", "codec")
		if ok {
			if f, ok := l.require(m, "initial", s.key, "aggregate"); ok {
				if x := l.cel(f, "aggregate initial", varsNone, wantAny); x != nil {
					v, err := x.constant()
					if err != nil {
						l.errf(f.v, "aggregate initial: %v", err)
					}
					s.initial = v
				}
			}
			if f, ok := l.require(m, "add", s.key, "aggregate"); ok {
				s.expr = l.cel(f, "aggregate add", varsAggregate, wantAny)
			}
			s.codec, s.codecName = l.codec(m)
		}
	case "window":
		m, ok := l.fields(s.val, s.key, s.kind, "size", "advance", "grace")
		if ok {
			if f, ok := l.require(m, "size", s.key, "window"); ok {
				s.windows.Size = l.duration(f, "size", true)
			}
			s.windows.Advance = s.windows.Size
			if f, ok := m["advance"]; ok {
				s.windows.Advance = l.duration(f, "advance", true)
				switch w := s.windows; {
				case w.Size <= 0 || w.Advance <= 0:
				case w.Advance > w.Size:
					l.errf(f.v, "advance: windows cannot advance (%s) by more than their size (%s): records between them would be in no window", w.Advance, w.Size)
				case w.Size%w.Advance != 0:
					l.errf(f.v, "advance: the window size (%s) must be a multiple of advance (%s)", w.Size, w.Advance)
				}
			}
			if f, ok := m["grace"]; ok {
				s.windows.Grace = l.duration(f, "grace", false)
			}
		}
	case "suppress":
		m, ok := l.fields(s.val, s.key, s.kind, "every", "until")
		if !ok {
			break
		}
		every, hasEvery := m["every"]
		until, hasUntil := m["until"]
		switch {
		case hasEvery && hasUntil:
			l.errf(until.k, "suppress takes every or until, not both")
		case hasEvery:
			s.every = l.duration(every, "every", true)
		case hasUntil:
			if v, ok := l.str(until, "until"); ok {
				if v == "window_close" {
					s.untilWin = true
				} else {
					l.errf(until.v, "suppress until: only window_close is supported, not %q", v)
				}
			}
		default:
			l.errf(s.key, "suppress needs every (a coalescing interval) or until: window_close")
		}
	}
	return s
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
		l.errf(e.v, "%s: bad duration %q (write e.g. 500ms, 10s, 1m)", what, v)
	case positive && d <= 0:
		l.errf(e.v, "%s: the duration must be positive, not %s", what, v)
	case d < 0:
		l.errf(e.v, "%s: the duration must not be negative, not %s", what, v)
	default:
		return d
	}
	return 0
}

// branches reads the branches of a branch step.
func (l *loader) branches(b *build, p *pipeSpec, s *stepSpec) {
	if isNull(s.val) || s.val.Kind != yaml.SequenceNode {
		l.errf(orAt(s.val, s.key), "branch must be a list of {name, when}, found %s", kindName(s.val))
		return
	}
	if len(s.val.Content) == 0 {
		l.errf(s.key, "branch has no branches")
		return
	}
	for i, item := range s.val.Content {
		if item = l.resolve(item); item == nil {
			return
		}
		br := &branchSpec{owner: p, index: i}
		m, ok := l.fields(item, item, "a branch", "name", "when")
		if !ok {
			continue
		}
		what := "a branch"
		if e, ok := l.require(m, "name", item, what); ok {
			if n, ok := l.str(e, "branch name"); ok {
				br.nameNode = e.v
				what = "branch " + n
				if l.checkName(e.v, n, "branch name") && l.declare(b, n, &target{what: "branch", node: e.v, pipe: p, branch: br}) {
					br.name = n
				}
			}
		}
		if e, ok := l.require(m, "when", item, what); ok {
			br.when = l.cel(e, what+" when", varsRecord, wantBool)
		}
		p.branches = append(p.branches, br)
	}
}

// cel compiles the expression of e, reporting its problems at their
// position in the file.
func (l *loader) cel(e kv, what string, vars celVars, want celWant) *celExpr {
	text, ok := l.str(e, what)
	if !ok {
		return nil
	}
	x, issues := compileCEL(text, vars, want)
	for _, is := range issues {
		if is.line == 0 {
			l.errf(e.v, "%s: %s", what, is.msg)
			continue
		}
		off := 0
		if is.line == 1 {
			off = is.col
		}
		line, col, exact := l.posIn(e.v, off)
		if exact && is.line == 1 {
			l.errAt(line, col, "%s: %s", what, is.msg)
		} else {
			l.errAt(line, col, "%s: %s (at line %d, column %d of the expression)", what, is.msg, is.line, is.col+1)
		}
	}
	return x
}

// order checks the order of the steps of p.
func (l *loader) order(p *pipeSpec) {
	for i, s := range p.steps {
		var prev *stepSpec
		if i > 0 {
			prev = p.steps[i-1]
		}
		switch {
		case prev != nil && isTerminal(prev.kind):
			what := prev.kind + " ends a pipeline"
			if isAggregation(prev.kind) {
				what = fmt.Sprintf("%s makes pipeline %s a table: read its updates in another pipeline with from: table:%s", prev.kind, p.name, p.name)
			}
			l.errf(s.key, "step %s after %s (line %d): %s", s.kind, prev.kind, prev.key.Line, what)
			return
		case prev != nil && isGrouping(prev.kind) && s.kind != "window" && !isGroupAggregation(s.kind):
			l.errf(s.key, "%s must be followed by count, reduce or aggregate, not %s", prev.kind, s.kind)
			return
		case prev != nil && prev.kind == "window" && !isGroupAggregation(s.kind):
			l.errf(s.key, "window must be followed by count, reduce or aggregate, not %s", s.kind)
			return
		case s.kind == "window" && (prev == nil || !isGrouping(prev.kind)):
			l.errf(s.key, "window needs a group_by_key or group_by step before it")
		case isGroupAggregation(s.kind) && (prev == nil || !isGrouping(prev.kind) && prev.kind != "window"):
			l.errf(s.key, "%s needs a group_by_key or group_by step before it", s.kind)
		case s.kind == "join_table" && (!p.fromTable || i != 0):
			l.errf(s.key, "join_table joins the table a pipeline reads with another table: use it as the only step of a pipeline with from: table:<pipeline>")
		case s.kind == "suppress":
			if !p.fromTable {
				l.errf(s.key, "suppress reads the updates of a table: use it as the first step of a pipeline with from: table:<pipeline>")
			} else if i != 0 {
				l.errf(s.key, "suppress must be the first step of its pipeline")
			}
			if i+1 >= len(p.steps) || p.steps[i+1].kind != "to" {
				l.errf(s.key, "suppress must be followed by a to step")
			}
		}
	}
	if n := len(p.steps); n > 0 && (isGrouping(p.steps[n-1].kind) || p.steps[n-1].kind == "window") {
		s := p.steps[n-1]
		l.errf(s.key, "%s must be followed by count, reduce or aggregate", s.kind)
	}
}

func isGrouping(kind string) bool { return kind == "group_by_key" || kind == "group_by" }

func isAggregation(kind string) bool {
	return kind == "count" || kind == "reduce" || kind == "aggregate" || kind == "latest" || kind == "join_table"
}

// isGroupAggregation reports whether kind aggregates a grouping.
func isGroupAggregation(kind string) bool {
	return kind == "count" || kind == "reduce" || kind == "aggregate"
}

func isTerminal(kind string) bool { return kind == "to" || kind == "branch" || isAggregation(kind) }

// checkSuppress checks that a suppress until window_close reads a
// windowed table.
func (l *loader) checkSuppress(p *pipeSpec) {
	if len(p.steps) == 0 || !p.steps[0].untilWin || p.reads == nil || !p.fromTable {
		return
	}
	for _, s := range p.reads.steps {
		if s.kind == "window" {
			return
		}
	}
	l.errf(p.steps[0].key, "suppress until window_close needs a windowed table: pipeline %s has no window step", p.reads.name)
}

// resolveFrom checks what pipeline p reads.
func (l *loader) resolveFrom(b *build, p *pipeSpec) {
	if p.fromNode == nil {
		return
	}
	at := p.fromNode
	if p.fromTable {
		name := strings.TrimPrefix(p.from, "table:")
		t := b.names[name]
		switch {
		case t == nil:
			var tables []string
			for _, q := range b.pipes {
				if q.out == outTable {
					tables = append(tables, q.name)
				}
			}
			if hint := didYouMean(name, tables); hint != "" {
				l.errf(at, "from: unknown pipeline %q%s", name, hint)
			} else if len(tables) > 0 {
				l.errf(at, "from: unknown pipeline %q (pipelines with a table: %s)", name, strings.Join(tables, ", "))
			} else {
				l.errf(at, "from: unknown pipeline %q (no pipeline ends in an aggregation)", name)
			}
		case t.what != "pipeline":
			l.errf(at, "from: %s is a %s, not a pipeline with a table: read it with from: %s", name, t.what, name)
		case t.pipe.out != outTable:
			l.errf(at, "from: pipeline %s does not end in an aggregation, so it has no table: read it with from: %s", name, name)
		default:
			p.reads = t.pipe
			if len(p.steps) == 0 || p.steps[0].kind != "suppress" {
				l.registerUpdates(b, t.pipe, at)
			}
		}
		return
	}
	t := b.names[p.from]
	switch {
	case t == nil:
		if _, ok := b.tableByNm[p.from]; ok {
			l.errf(at, "from: %s is a table, which join steps read; a pipeline reads a stream, a pipeline or table:<pipeline>", p.from)
			return
		}
		var names []string
		for _, s := range b.streams {
			names = append(names, s.name)
		}
		for _, q := range b.pipes {
			if q.name != "" {
				names = append(names, q.name)
			}
			for _, br := range q.branches {
				if br.name != "" {
					names = append(names, br.name)
				}
			}
		}
		if hint := didYouMean(p.from, names); hint != "" {
			l.errf(at, "from: unknown stream or pipeline %q%s", p.from, hint)
		} else {
			l.errf(at, "from: unknown stream or pipeline %q", p.from)
		}
	case t.what == "stream":
		p.readsSrc = t.src
	case t.what == "branch":
		p.reads, p.readsBr = t.pipe, t.branch
	case t.pipe.out == outTable:
		l.errf(at, "from: pipeline %s is a table: read its updates with from: table:%s", p.from, p.from)
	case len(t.pipe.steps) > 0 && t.pipe.steps[0].kind == "suppress":
		l.errf(at, "from: pipeline %s coalesces its records with suppress for its to step: read table:%s instead", p.from, strings.TrimPrefix(t.pipe.from, "table:"))
	case t.pipe.out == outBranch:
		names := make([]string, 0, len(t.pipe.branches))
		for _, br := range t.pipe.branches {
			names = append(names, br.name)
		}
		l.errf(at, "from: pipeline %s ends in a branch: read one of its branches (%s)", p.from, strings.Join(names, ", "))
	default:
		p.reads = t.pipe
	}
}

// resolveJoins checks the tables the join steps of p read: a table of
// tables:, or a pipeline of this topology that ends in an aggregation.
func (l *loader) resolveJoins(b *build, p *pipeSpec) {
	for _, s := range p.steps {
		if (s.kind != "join" && s.kind != "join_table") || s.tableNode == nil {
			continue
		}
		t := s.table
		if _, ok := b.tableByNm[t]; ok {
			if q := b.names[t]; q != nil && q.what == "pipeline" && q.pipe.out == outTable {
				l.errf(s.tableNode, "join: %s is both a table of tables: and a pipeline with a table: rename one", t)
			}
			continue
		}
		if q := b.names[t]; q != nil && q.what == "pipeline" {
			if q.pipe.out == outTable {
				s.joinPipe = q.pipe
			} else {
				l.errf(s.tableNode, "join: pipeline %s does not end in an aggregation, so it has no table", t)
			}
			continue
		}
		names := make([]string, 0, len(b.tables))
		for _, t := range b.tables {
			names = append(names, t.name)
		}
		for _, q := range b.pipes {
			if q.out == outTable && q.name != "" {
				names = append(names, q.name)
			}
		}
		switch {
		case didYouMean(t, names) != "":
			l.errf(s.tableNode, "unknown table %q%s", t, didYouMean(t, names))
		case len(names) == 0:
			l.errf(s.tableNode, "unknown table %q: declare the tables joins read under tables:", t)
		default:
			l.errf(s.tableNode, "unknown table %q (tables: %s)", t, strings.Join(names, ", "))
		}
	}
}

// registerUpdates registers the node of the updates of q's table, read by
// a table: pipeline that does not start with suppress.
func (l *loader) registerUpdates(b *build, q *pipeSpec, at *yaml.Node) {
	if !q.updatesNamed {
		q.updatesNamed = true
		b.nodeName(l, q.name+"-updates", "the updates of table "+q.name, at)
	}
}

// cycles reports pipelines that read themselves, directly or not.
func (l *loader) cycles(b *build) {
	const (
		white = iota
		grey
		black
	)
	var path []*pipeSpec
	var via []bool // via[i]: path[i] joins path[i+1] (else reads it)
	var visit func(p *pipeSpec)
	// found reports the cycle closed by p's dependency on q (read, or
	// joined at join); p depends on q, which depends on the next pipeline
	// of the path, ..., which depends on p.
	found := func(p, q *pipeSpec, join *stepSpec) {
		k := len(path) - 1
		for k > 0 && path[k] != q {
			k--
		}
		chain := []string{p.name}
		for _, r := range path[k:] {
			chain = append(chain, r.name)
		}
		joined := join != nil
		for _, j := range via[k:] {
			joined = joined || j
		}
		at, what := p.fromNode, "from"
		if join != nil {
			at, what = join.tableNode, "join"
		}
		switch {
		case join != nil && q == p:
			l.errf(at, "join: pipeline %s joins its own table", p.name)
		case q == p:
			l.errf(at, "from: pipeline %s reads itself", p.name)
		case joined:
			l.errf(at, "%s: pipelines depend on each other in a cycle: %s (each reads or joins the next)", what, strings.Join(chain, " -> "))
		default:
			l.errf(at, "from: pipelines read each other in a cycle: %s (each reads the next)", strings.Join(chain, " -> "))
		}
	}
	visit = func(p *pipeSpec) {
		p.state = grey
		path = append(path, p)
		if q := p.reads; q != nil {
			switch q.state {
			case white:
				via = append(via, false)
				visit(q)
				via = via[:len(via)-1]
			case grey:
				found(p, q, nil)
				p.reads = nil // no further trouble
			}
		}
		for _, s := range p.steps {
			if q := s.joinPipe; q != nil {
				switch q.state {
				case white:
					via = append(via, true)
					visit(q)
					via = via[:len(via)-1]
				case grey:
					found(p, q, s)
					s.joinPipe = nil
				}
			}
		}
		path = path[:len(path)-1]
		p.state = black
	}
	for _, p := range b.pipes {
		if p.state == white {
			visit(p)
		}
	}
}
