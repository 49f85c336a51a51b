package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphDefinitionGolden(t *testing.T) {
	got, err := json.MarshalIndent(graphDefinitions("gostats", nil), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("..", "testdata", "graphdef.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readTestdata(t, "graphdef.golden.json")
	if !bytes.Equal(got, want) {
		t.Errorf("graph definitions differ from %s (go test ./lib -update rewrites it):\n%s", golden, got)
	}
}

func TestGraphLabels(t *testing.T) {
	tests := []struct{ prefix, memoryLabel string }{
		{"gostats", "Gostats Memory"},
		{"gostats.prod", "Gostats Prod Memory"},
		{"app.go-stats_2", "App Go Stats 2 Memory"},
	}
	for _, tt := range tests {
		graphs := graphDefinitions(tt.prefix, nil)
		if got := graphs[tt.prefix+".#.memory"].Label; got != tt.memoryLabel {
			t.Errorf("prefix %s: memory graph label %q, want %q", tt.prefix, got, tt.memoryLabel)
		}
		for key, g := range graphs {
			switch g.Unit { // the units mackerel-agent accepts
			case "float", "integer", "percentage", "seconds", "milliseconds", "bytes", "bytes/sec", "bits/sec", "iops":
			default:
				t.Errorf("graph %s unit %q", key, g.Unit)
			}
		}
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), defaultParts(time.Now), []string{"--version"}, "v1.2.3", &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if stdout.String() != "mackerel-plugin-ecs-gostats v1.2.3\n" {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestPrintList(t *testing.T) {
	results := []result{
		{target: target{ContainerID: "d6f4005db94f0123", ContainerName: "ecs-web-3-web-e8c6", Family: "web", Host: "127.0.0.1", Port: 32769, HostPort: 32769},
			key: "32769", latency: 2340 * time.Microsecond, values: allValues(), how: how{prometheusFormat{}, "/metrics", "probe", "probe"}},
		{target: target{ContainerID: "d01217798a9a0123", ContainerName: "ecs-api-7-api-9a8b", Host: "127.0.0.1", Port: 32770, HostPort: 32770},
			key: "32770", cause: errors.New("unexpected status 500 Internal Server Error")},
	}
	var out bytes.Buffer
	printList(&out, &report{results: results, passed: []passedOver{{"ecs-mackerel-container-agent-1", "a0b1c2d3e4f5a6b7", "lists no TCP port (no portMappings)"}}})
	want := "ecs-web-3-web-e8c6              d6f4005db94f  web  127.0.0.1:32769  32769  ok 2.3ms                                            prometheus (probe) at /metrics (probe)\n" +
		"ecs-api-7-api-9a8b              d01217798a9a  -    127.0.0.1:32770  32770  error: unexpected status 500 Internal Server Error  -\n" +
		"ecs-mackerel-container-agent-1  a0b1c2d3e4f5  -    -                -      passed over: lists no TCP port (no portMappings)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// TestListFormatFrom: --list says a target's format came from the flag
// only when --format is given; else it is the default's.
func TestListFormatFrom(t *testing.T) {
	host := fleetDocker(t, fleet(t, 1, func(int) http.Handler { return realHandler })...)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "gostats (default) at /stats (default)"},
		{[]string{"--format", "gostats"}, "gostats (flag) at /stats (default)"},
		{[]string{"--format=gostats", "--path", "/stats"}, "gostats (flag) at /stats (flag)"},
	} {
		r := runIn(t, host, append(tt.args, "--list")...)
		if r.code != 0 || len(r.keys) != 1 || !strings.HasSuffix(r.keys[0], "  "+tt.want) {
			t.Errorf("%q: exit %d, --list %q, want one line ending %q", tt.args, r.code, r.keys, tt.want)
		}
	}
}

// allValues has every metric, hidden ones too, at 1.
func allValues() values {
	v := values{}
	for _, m := range metrics() {
		v[m] = 1
	}
	return v
}

// testFormats are the plugin's own formats, as a run has them.
var testFormats = defaultParts(time.Now).formats

// byKey is v under the "<graph>.<metric>" keys of its metrics, for tests to
// compare with maps written by hand; nil for nil.
//
// The values only labeled outputs send (the hidden gauges gc._next_gc,
// runtime._gomaxprocs, operation._heap_allocs_objects) are left out: the
// parse tests check what the Mackerel output reads, and
// TestParseOTLPOnlyValues checks those.
func byKey(v values) map[string]float64 {
	if v == nil {
		return nil
	}
	out := make(map[string]float64, len(v))
	for m, f := range v {
		if m == hiddenGCGoal || m == hiddenMaxProcs || m == hiddenHeapAllocs {
			continue
		}
		out[m.key()] = f
	}
	return out
}

// byKeyAll is byKey with every value.
func byKeyAll(v values) map[string]float64 {
	out := make(map[string]float64, len(v))
	for m, f := range v {
		out[m.key()] = f
	}
	return out
}

// ofKeys is the values of a map written by hand under "<graph>.<metric>"
// keys (hidden metrics too: "gc._num_gc"); a key of no metric panics.
func ofKeys(kv map[string]float64) values {
	v := make(values, len(kv))
	for k, f := range kv {
		m, ok := metricOfKey(k)
		if !ok {
			panic("no metric has the key " + k)
		}
		v[m] = f
	}
	return v
}

// metricOfKey is the metric of a "<graph>.<metric>" key.
func metricOfKey(key string) (metric, bool) {
	for _, m := range metrics() {
		if m.key() == key {
			return m, true
		}
	}
	return 0, false
}

// readAs parses a body as f does in a run, with the hint of another format
// when f cannot read it, and gives the values by key.
func readAs(f format) func([]byte) (map[string]float64, error) {
	return func(body []byte) (map[string]float64, error) {
		v, err := testFormats.read(f, "", body)
		return byKey(v), err
	}
}

// parseBy gives the values of a format's parse by key.
func parseBy(parse func([]byte) (values, error)) func([]byte) (map[string]float64, error) {
	return func(body []byte) (map[string]float64, error) {
		v, err := parse(body)
		return byKey(v), err
	}
}

// testClock is a run's clock that moves only when the test moves it: runs
// in process see the times the test sets, and rates between them need no
// sleep. It is safe for the scrapes' goroutines.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestRunGraphs: --graphs keeps the graphs named, in the values and in the
// graph definitions of meta mode.
func TestRunGraphs(t *testing.T) {
	host := fleetDocker(t, fleet(t, 1, func(int) http.Handler { return realHandler })...)
	r := runIn(t, host, "--graphs", "memory,objects", "--no-health")
	var graphs []string
	for _, k := range r.keys {
		graphs = append(graphs, strings.SplitN(k, ".", 4)[2]+"."+strings.SplitN(k, ".", 4)[3])
	}
	want := []string{"memory.memory_alloc", "memory.memory_sys", "memory.memory_stack", "objects.heap_objects"}
	if r.code != 0 || len(r.stderr) != 0 || !slices.Equal(graphs, want) {
		t.Errorf("exit %d, stderr %q, keys %q\nwant %q", r.code, r.stderr, r.keys, want)
	}

	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "1")
	var stdout bytes.Buffer
	if code := run(t.Context(), defaultParts(time.Now), []string{"--graphs", "memory,objects", "--no-health"}, "test", &stdout, io.Discard); code != 0 {
		t.Fatalf("meta mode: exit %d", code)
	}
	_, body, _ := strings.Cut(stdout.String(), "\n")
	var meta struct{ Graphs map[string]any }
	if err := json.Unmarshal([]byte(body), &meta); err != nil {
		t.Fatal(err)
	}
	if got := slices.Sorted(maps.Keys(meta.Graphs)); !slices.Equal(got, []string{"gostats.#.memory", "gostats.#.objects"}) {
		t.Errorf("meta mode graphs %q", got)
	}
}

// TestMetaOutputs: in meta mode, the tasks' graphs go with the mackerel
// output, the otlp health graph with the otlp one.
func TestMetaOutputs(t *testing.T) {
	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "1")
	tests := []struct {
		args []string
		want []string
	}{
		{nil, []string{"gostats.#.allocation", "gostats.#.gc", "gostats.#.heap", "gostats.#.memory", "gostats.#.objects",
			"gostats.#.operation", "gostats.#.runtime", "gostats_scrape.discovery", "gostats_scrape.run", "gostats_scrape.targets"}},
		{[]string{"--output", "otlp", "--otlp-endpoint", "127.0.0.1:4317"},
			[]string{"gostats_scrape.discovery", "gostats_scrape.otlp", "gostats_scrape.run", "gostats_scrape.targets"}},
		{[]string{"--output", "mackerel,otlp", "--otlp-endpoint", "127.0.0.1:4317", "--graphs", "memory"},
			[]string{"gostats.#.memory", "gostats_scrape.discovery", "gostats_scrape.otlp", "gostats_scrape.run", "gostats_scrape.targets"}},
	}
	for _, tt := range tests {
		var stdout bytes.Buffer
		if code := run(t.Context(), defaultParts(time.Now), tt.args, "test", &stdout, io.Discard); code != 0 {
			t.Fatalf("%q: exit %d", tt.args, code)
		}
		_, body, _ := strings.Cut(stdout.String(), "\n")
		var meta struct{ Graphs map[string]any }
		if err := json.Unmarshal([]byte(body), &meta); err != nil {
			t.Fatal(err)
		}
		if got := slices.Sorted(maps.Keys(meta.Graphs)); !slices.Equal(got, tt.want) {
			t.Errorf("%q: graphs %q\nwant %q", tt.args, got, tt.want)
		}
	}
}

// TestMetricKeys: every metric's "<graph>.<metric>" key, in metricDefs
// order, the hidden ones last: what the Mackerel output prints and the
// state file keeps, and what the tests' maps written by hand name.
func TestMetricKeys(t *testing.T) {
	want := []string{
		"runtime.goroutine_num", "runtime.cgo_call_num",
		"memory.memory_alloc", "memory.memory_sys", "memory.memory_stack",
		"operation.memory_lookups", "operation.memory_mallocs", "operation.memory_frees",
		"heap.heap_sys", "heap.heap_idle", "heap.heap_inuse", "heap.heap_released",
		"gc.gc_num", "gc.gc_per_second", "gc.gc_pause_per_second",
		"objects.heap_objects", "allocation.memory_total_alloc",
		"gc._num_gc", "gc._pause_total_ns",
		"gc._next_gc", "runtime._gomaxprocs", "operation._heap_allocs_objects",
	}
	var got []string
	for _, m := range metrics() {
		got = append(got, m.key())
		if m.def().hidden != strings.HasPrefix(m.def().name, "_") {
			t.Errorf("%s: hidden %v", m.key(), m.def().hidden)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("keys %q\nwant %q", got, want)
	}
	all := map[string]float64{}
	for i, k := range want {
		all[k] = float64(i)
	}
	if back := byKeyAll(ofKeys(all)); !maps.Equal(back, all) {
		t.Errorf("by key and back: %v\nwant %v", back, all)
	}
}

// TestMetaIsPluginHelpersGraphDef: meta mode prints what
// go-mackerel-plugin-helper's GraphDef prints for the same definitions,
// byte for byte, with every output's and the health graphs in it.
func TestMetaIsPluginHelpersGraphDef(t *testing.T) {
	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "1")
	t.Setenv(envAPIKey, "")
	var stdout, stderr bytes.Buffer
	args := []string{"--output", "mackerel,otlp", "--otlp-endpoint", "localhost:4317", "--otlp-insecure", "--container-metrics"}
	if code := run(t.Context(), defaultParts(time.Now), args, "test", &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	header, body, _ := strings.Cut(stdout.String(), "\n")
	if header != "# mackerel-agent-plugin" {
		t.Fatalf("header %q", header)
	}
	var def mp.GraphDef
	if err := json.Unmarshal([]byte(body), &def); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(def)
	if err != nil {
		t.Fatal(err)
	}
	if string(b)+"\n" != body {
		t.Errorf("meta output:\n%s\ngo-mackerel-plugin-helper's GraphDef of it:\n%s", body, b)
	}
	for _, g := range []string{"gostats.#.runtime", "gostats.#.container_cpu", "gostats_scrape.targets", "gostats_scrape.otlp", "gostats_scrape.containers"} {
		if _, ok := def.Graphs[g]; !ok {
			t.Errorf("no graph %s in %s", g, body)
		}
	}
}
