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
	topKeys      = []string{"app", "brokers", "sasl", "on_error", "tracing", "cache_max_bytes", "commit_interval", "streams", "tables", "pipelines"}
	sourceKeys   = []string{"topic", "codec", "timestamp", "sample_ratio"}
	pipelineKeys = []string{"name", "from", "steps"}
	saslKeys     = []string{"mechanism", "user", "password"}
	mechanisms   = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}
	onErrors     = []string{OnErrorDeadLetter, OnErrorStop}
)

type sourceSpec struct {
	name      string
	key       *yaml.Node
	topic     string
	codec     goka.Codec
	codecName string
	timestamp *celExpr         // streams: the event time (nil: record timestamps)
	ratio     *float64         // streams: the trace sample ratio (nil: the file's)
	stream    *topology.Stream // built on first use
	table     *topology.Table
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
	end     *topology.Stream
	table   *topology.Table
	updates *topology.Stream
}

type branchSpec struct {
	name     string
	nameNode *yaml.Node
	when     *celExpr
	owner    *pipeSpec
	index    int
	end      *topology.Stream
}

type stepSpec struct {
	kind      string
	def       *stepKind // its row of stepKinds
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
	windows   topology.Windows
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

func (l *loader) sasl(e kv) SASL {
	var s SASL
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
	if f, ok := m["mechanism"]; ok && s.Mechanism != "" && !contains(mechanisms, strings.ToUpper(s.Mechanism)) {
		l.Errorf(f.V, "sasl mechanism %q is not supported (use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", s.Mechanism)
	}
	s.Mechanism = strings.ToUpper(s.Mechanism)
	return s
}

// sources reads the streams or tables section.
func (l *loader) sources(e kv, what string) []*sourceSpec {
	if yamlpos.IsNull(e.V) {
		return nil
	}
	if e.V.Kind != yaml.MappingNode {
		l.Errorf(e.V, "%ss must be a mapping of names to {topic, codec}, found %s", what, yamlpos.KindName(e.V))
		return nil
	}
	var out []*sourceSpec
	for _, en := range l.Entries(e.V) {
		s := &sourceSpec{name: en.K.Value, key: en.K}
		desc := what + " " + s.name
		l.checkName(en.K, s.name, what+" name")
		m, ok := l.fields(en.V, en.K, desc, sourceKeys...)
		if ok {
			if t, ok := l.require(m, "topic", en.K, desc); ok {
				if topic, ok := l.str(t, "topic"); ok && l.checkTopic(t.V, topic) {
					s.topic = topic
				}
			}
			s.codec, s.codecName = l.codec(m)
			if e, ok := m["timestamp"]; ok {
				if what == "stream" {
					s.timestamp = l.cel(e, "timestamp", varsRecord, wantTime)
				} else {
					l.Errorf(e.K, "timestamp is for streams: a table's values keep the event time of their writers")
				}
			}
			if e, ok := m["sample_ratio"]; ok {
				if what == "stream" {
					s.ratio = l.ratio(e)
				} else {
					l.Errorf(e.K, "sample_ratio is for streams: traces start where records enter the topology")
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

// nodeName registers a node name of the topology to be built.
func (b *build) nodeName(l *loader, name, what string, at *yaml.Node) {
	if prev, ok := b.nodeNames[name]; ok {
		l.Errorf(at, "%s would be named %q like %s (line %d): rename one of them", what, name, prev.what, prev.node.Line)
		return
	}
	b.nodeNames[name] = nodeName{what: what, node: at}
}

// pipelines reads the pipelines section and checks the references between
// pipelines.
func (l *loader) pipelines(b *build, e kv) {
	if yamlpos.IsNull(e.V) || e.V.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(e.V, e.K), "pipelines must be a list, found %s", yamlpos.KindName(e.V))
		return
	}
	if len(e.V.Content) == 0 {
		l.Errorf(e.K, "pipelines is empty: the topology does nothing")
		return
	}
	for _, item := range e.V.Content {
		if item = l.Resolve(item); item == nil {
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
			does = does || s.def.does()
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
	if !does && !l.Failed() {
		l.Errorf(e.K, "the topology does nothing: no pipeline has a to step or an aggregation")
	}
}

// declare declares a name that `from` may read (pipelines and branches
// share the namespace of streams); it reports a name used twice.
func (l *loader) declare(b *build, name string, t *target) bool {
	if prev, ok := b.names[name]; ok {
		l.Errorf(t.node, "name %q is already used by %s %s (line %d)", name, prev.what, name, prev.node.Line)
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
			p.nameNode = e.V
			if l.checkName(e.V, s, "pipeline name") && l.declare(b, s, &target{what: "pipeline", node: e.V, pipe: p}) {
				p.name = s
			}
		}
	}
	if e, ok := l.require(m, "from", n, what); ok {
		if s, ok := l.str(e, "from"); ok {
			p.from, p.fromNode = s, e.V
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
	if yamlpos.IsNull(e.V) || e.V.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(e.V, e.K), "steps of %s must be a list, found %s", what, yamlpos.KindName(e.V))
		return p
	}
	if len(e.V.Content) == 0 {
		l.Errorf(e.K, "%s has no steps", what)
		return p
	}
	complete := true
	for i, item := range e.V.Content {
		if item = l.Resolve(item); item == nil {
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
		p.out = outOf(p.steps[len(p.steps)-1])
	}
	if p.name != "" {
		l.nameNodes(b, p)
	}
	return p
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

// branches reads the branches of a branch step.
func (l *loader) branches(b *build, p *pipeSpec, s *stepSpec) {
	if yamlpos.IsNull(s.val) || s.val.Kind != yaml.SequenceNode {
		l.Errorf(yamlpos.OrAt(s.val, s.key), "branch must be a list of {name, when}, found %s", yamlpos.KindName(s.val))
		return
	}
	if len(s.val.Content) == 0 {
		l.Errorf(s.key, "branch has no branches")
		return
	}
	for i, item := range s.val.Content {
		if item = l.Resolve(item); item == nil {
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
				br.nameNode = e.V
				what = "branch " + n
				if l.checkName(e.V, n, "branch name") && l.declare(b, n, &target{what: "branch", node: e.V, pipe: p, branch: br}) {
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
			l.Errorf(e.V, "%s: %s", what, is.msg)
			continue
		}
		off := 0
		if is.line == 1 {
			off = is.col
		}
		line, col, exact := l.PosIn(e.V, off)
		if exact && is.line == 1 {
			l.ErrorAt(line, col, "%s: %s", what, is.msg)
		} else {
			l.ErrorAt(line, col, "%s: %s (at line %d, column %d of the expression)", what, is.msg, is.line, is.col+1)
		}
	}
	return x
}

// checkSuppress checks that a suppress until window_close reads a
// windowed table.
func (l *loader) checkSuppress(p *pipeSpec) {
	if len(p.steps) == 0 || !p.steps[0].untilWin || p.reads == nil || !p.fromTable {
		return
	}
	for _, s := range p.reads.steps {
		if s.def.windowing {
			return
		}
	}
	l.Errorf(p.steps[0].key, "suppress until window_close needs a windowed table: pipeline %s has no window step", p.reads.name)
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
				l.Errorf(at, "from: unknown pipeline %q%s", name, hint)
			} else if len(tables) > 0 {
				l.Errorf(at, "from: unknown pipeline %q (pipelines with a table: %s)", name, strings.Join(tables, ", "))
			} else {
				l.Errorf(at, "from: unknown pipeline %q (no pipeline ends in an aggregation)", name)
			}
		case t.what != "pipeline":
			l.Errorf(at, "from: %s is a %s, not a pipeline with a table: read it with from: %s", name, t.what, name)
		case t.pipe.out != outTable:
			l.Errorf(at, "from: pipeline %s does not end in an aggregation, so it has no table: read it with from: %s", name, name)
		default:
			p.reads = t.pipe
			if len(p.steps) == 0 || !p.steps[0].def.coalesces {
				l.registerUpdates(b, t.pipe, at)
			}
		}
		return
	}
	t := b.names[p.from]
	switch {
	case t == nil:
		if _, ok := b.tableByNm[p.from]; ok {
			l.Errorf(at, "from: %s is a table, which join steps read; a pipeline reads a stream, a pipeline or table:<pipeline>", p.from)
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
			l.Errorf(at, "from: unknown stream or pipeline %q%s", p.from, hint)
		} else {
			l.Errorf(at, "from: unknown stream or pipeline %q", p.from)
		}
	case t.what == "stream":
		p.readsSrc = t.src
	case t.what == "branch":
		p.reads, p.readsBr = t.pipe, t.branch
	case t.pipe.out == outTable:
		l.Errorf(at, "from: pipeline %s is a table: read its updates with from: table:%s", p.from, p.from)
	case len(t.pipe.steps) > 0 && t.pipe.steps[0].def.coalesces:
		l.Errorf(at, "from: pipeline %s coalesces its records with suppress for its to step: read table:%s instead", p.from, strings.TrimPrefix(t.pipe.from, "table:"))
	case t.pipe.out == outBranch:
		names := make([]string, 0, len(t.pipe.branches))
		for _, br := range t.pipe.branches {
			names = append(names, br.name)
		}
		l.Errorf(at, "from: pipeline %s ends in a branch: read one of its branches (%s)", p.from, strings.Join(names, ", "))
	default:
		p.reads = t.pipe
	}
}

// resolveJoins checks the tables the join steps of p read: a table of
// tables:, or a pipeline of this topology that ends in an aggregation.
func (l *loader) resolveJoins(b *build, p *pipeSpec) {
	for _, s := range p.steps {
		if !s.def.joins || s.tableNode == nil {
			continue
		}
		t := s.table
		if _, ok := b.tableByNm[t]; ok {
			if q := b.names[t]; q != nil && q.what == "pipeline" && q.pipe.out == outTable {
				l.Errorf(s.tableNode, "join: %s is both a table of tables: and a pipeline with a table: rename one", t)
			}
			continue
		}
		if q := b.names[t]; q != nil && q.what == "pipeline" {
			if q.pipe.out == outTable {
				s.joinPipe = q.pipe
			} else {
				l.Errorf(s.tableNode, "join: pipeline %s does not end in an aggregation, so it has no table", t)
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
			l.Errorf(s.tableNode, "unknown table %q%s", t, didYouMean(t, names))
		case len(names) == 0:
			l.Errorf(s.tableNode, "unknown table %q: declare the tables joins read under tables:", t)
		default:
			l.Errorf(s.tableNode, "unknown table %q (tables: %s)", t, strings.Join(names, ", "))
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
			l.Errorf(at, "join: pipeline %s joins its own table", p.name)
		case q == p:
			l.Errorf(at, "from: pipeline %s reads itself", p.name)
		case joined:
			l.Errorf(at, "%s: pipelines depend on each other in a cycle: %s (each reads or joins the next)", what, strings.Join(chain, " -> "))
		default:
			l.Errorf(at, "from: pipelines read each other in a cycle: %s (each reads the next)", strings.Join(chain, " -> "))
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
