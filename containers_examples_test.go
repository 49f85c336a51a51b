package main

// The container metrics' examples: examples/dashboard-containers.json draws
// only metrics the plugin prints with --container-metrics, and
// examples/monitors-containers.json's query monitor names only series the
// OTLP output sends (docs/container-metrics.md's table); the real mkr
// pushes both intact.

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// containerMetricNames are the container metrics of a target, as
// <graph>.<metric>: TestContainerMetricsDocker finds each in the built
// plugin's output.
var containerMetricNames = []string{
	"container_cpu.usage", "container_cpu.limit",
	"container_memory.usage", "container_memory.limit",
	"container_network.rx_bytes", "container_network.tx_bytes",
	"container_disk.read_bytes", "container_disk.write_bytes",
}

func TestContainerDashboardExample(t *testing.T) {
	_, exprs := checkDashboard(t, "examples/dashboard-containers.json")
	used := map[string]bool{}
	for i, expr := range exprs {
		for _, c := range roleCallRe.FindAllStringSubmatch(expr, -1) {
			if name, ok := strings.CutPrefix(c[2], "custom."+healthPrefix); ok && name == "containers.errors" {
				used[name] = true
				continue
			}
			m := customMetricRe.FindStringSubmatch(c[2])
			if m == nil || !slices.Contains(containerMetricNames, m[1]) {
				t.Errorf("widget %d: %q is not a container metric the plugin prints", i, c[2])
				continue
			}
			used[m[1]] = true
		}
	}
	for _, want := range append([]string{"containers.errors"}, containerMetricNames...) {
		if !used[want] {
			t.Errorf("no graph of %s", want)
		}
	}
}

// queryMonitor is a query monitor (PromQL over labeled metrics) as the
// Mackerel API takes it.
type queryMonitor struct {
	ID       string   `json:"id,omitempty"`
	Type     string   `json:"type"`
	Name     string   `json:"name"`
	Memo     string   `json:"memo"`
	Query    string   `json:"query"`
	Legend   string   `json:"legend"`
	Operator string   `json:"operator"`
	Warning  *float64 `json:"warning"`
	Critical *float64 `json:"critical"`
}

// otlpNameRe is a dotted series name in a query (not a label in by (...)
// nor in {{...}}).
var otlpNameRe = regexp.MustCompile(`\b(?:container|ecs_gostats)\.[a-z_.]+[a-z_]\b`)

func TestContainerMonitorExample(t *testing.T) {
	b, err := os.ReadFile("examples/monitors-containers.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Monitors []json.RawMessage `json:"monitors"`
	}
	if err := json.Unmarshal(b, &file); err != nil || len(file.Monitors) != 1 {
		t.Fatalf("%v: want one monitor", err)
	}
	dec := json.NewDecoder(bytes.NewReader(file.Monitors[0]))
	dec.DisallowUnknownFields()
	var m queryMonitor
	if err := dec.Decode(&m); err != nil {
		t.Fatal(err)
	}
	if m.Type != "query" || m.Name == "" || m.Memo == "" || m.ID != "" || m.Operator != ">" ||
		m.Warning == nil || m.Critical == nil || !(0 < *m.Warning && *m.Warning < *m.Critical && *m.Critical < 1) {
		t.Errorf("monitor %+v: want a query monitor, > warning < critical < 1 (a share of the limit)", m)
	}
	if strings.Count(m.Query, "(") != strings.Count(m.Query, ")") {
		t.Errorf("unbalanced parentheses in %s", m.Query)
	}
	guide, err := os.ReadFile("docs/container-metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	names := otlpNameRe.FindAllString(strings.NewReplacer("aws.ecs.task.family", "", "container.name", "").Replace(m.Query), -1)
	if !slices.Contains(names, "container.memory.working_set") || !slices.Contains(names, "ecs_gostats.container.memory.limit") {
		t.Errorf("query %s: want the working set over the limit", m.Query)
	}
	for _, n := range names {
		if !strings.Contains(string(guide), "| `"+n+"` |") {
			t.Errorf("query names %s, not a series of docs/container-metrics.md's table", n)
		}
	}
}

// TestMkrPushContainerExamples pushes the container dashboard and monitor
// with the real mkr to a stand-in of the Mackerel API: each arrives intact.
func TestMkrPushContainerExamples(t *testing.T) {
	mkr := mkrBin(t)
	api := &mackerelAPI{}
	srv := httptest.NewServer(api.handler(t))
	defer srv.Close()
	for _, args := range [][]string{
		{"dashboards", "push", "--file-path", "examples/dashboard-containers.json"},
		{"monitors", "push", "--file-path", "examples/monitors-containers.json"},
	} {
		cmd := exec.Command(mkr, append([]string{"--apibase", srv.URL}, args...)...)
		cmd.Env = append(os.Environ(), "MACKEREL_APIKEY=test-api-key")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkr %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	bodies := map[string][]byte{}
	for _, w := range api.takeWrites() {
		b, _ := json.Marshal(w.body)
		bodies[w.method+" "+w.path] = b
		if w.path == "/api/v0/dashboards" {
			checkDashboardSent(t, w.body, "examples/dashboard-containers.json")
		}
	}
	if bodies["POST /api/v0/dashboards"] == nil {
		t.Fatal("no dashboard sent")
	}
	var mon, want queryMonitor
	var mfile struct{ Monitors []queryMonitor }
	b, _ := os.ReadFile("examples/monitors-containers.json")
	if err := json.Unmarshal(bodies["POST /api/v0/monitors"], &mon); err != nil || json.Unmarshal(b, &mfile) != nil {
		t.Fatalf("monitor sent %s (%v)", bodies["POST /api/v0/monitors"], err)
	}
	want = mfile.Monitors[0]
	if mon.Type != want.Type || mon.Name != want.Name || mon.Query != want.Query || mon.Legend != want.Legend ||
		*mon.Warning != *want.Warning || *mon.Critical != *want.Critical {
		t.Errorf("monitor sent %s, want %+v", bodies["POST /api/v0/monitors"], want)
	}
}
