package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

func TestHealthLines(t *testing.T) {
	now := time.Unix(1795613637, 0)
	ok := result{values: allValues()}
	bad := result{cause: errors.New("unexpected status 500 Internal Server Error")}
	tests := []struct {
		name            string
		prefix          string
		found           int
		results         []result
		discoveryErrors int
		elapsed         time.Duration
		outs            outputs
		outputErrors    []outputErrors
		want            string
	}{
		{"all answered", "gostats", 3, []result{ok, ok, ok}, 0, 23456789 * time.Microsecond, nil, nil, `
gostats_scrape.targets.found	3.000000	1795613637
gostats_scrape.targets.ok	3.000000	1795613637
gostats_scrape.targets.failed	0.000000	1795613637
gostats_scrape.run.seconds	23.456789	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
`},
		{"some failed", "gostats", 4, []result{ok, bad, ok, bad}, 0, 5*time.Second + 3*time.Millisecond, nil, nil, `
gostats_scrape.targets.found	4.000000	1795613637
gostats_scrape.targets.ok	2.000000	1795613637
gostats_scrape.targets.failed	2.000000	1795613637
gostats_scrape.run.seconds	5.003000	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
`},
		{"every target failed", "gostats", 2, []result{bad, bad}, 0, 2 * time.Second, nil, nil, `
gostats_scrape.targets.found	2.000000	1795613637
gostats_scrape.targets.ok	0.000000	1795613637
gostats_scrape.targets.failed	2.000000	1795613637
gostats_scrape.run.seconds	2.000000	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
`},
		{"a target found has no result: failed", "gostats", 2, []result{ok}, 0, time.Millisecond, nil, nil, `
gostats_scrape.targets.found	2.000000	1795613637
gostats_scrape.targets.ok	1.000000	1795613637
gostats_scrape.targets.failed	1.000000	1795613637
gostats_scrape.run.seconds	0.001000	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
`},
		{"no targets", "gostats", 0, nil, 0, 4 * time.Millisecond, nil, nil, `
gostats_scrape.targets.found	0.000000	1795613637
gostats_scrape.targets.ok	0.000000	1795613637
gostats_scrape.targets.failed	0.000000	1795613637
gostats_scrape.run.seconds	0.004000	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
`},
		{"discovery failed", "gostats", 0, nil, 1, 1500 * time.Microsecond, nil, nil, `
gostats_scrape.targets.found	0.000000	1795613637
gostats_scrape.targets.ok	0.000000	1795613637
gostats_scrape.targets.failed	0.000000	1795613637
gostats_scrape.run.seconds	0.001500	1795613637
gostats_scrape.discovery.errors	1.000000	1795613637
`},
		{"prefix with a dot", "gostats.prod", 1, []result{ok}, 0, time.Second, nil, nil, `
gostats.prod_scrape.targets.found	1.000000	1795613637
gostats.prod_scrape.targets.ok	1.000000	1795613637
gostats.prod_scrape.targets.failed	0.000000	1795613637
gostats.prod_scrape.run.seconds	1.000000	1795613637
gostats.prod_scrape.discovery.errors	0.000000	1795613637
`},
		{"an output that counts errors adds its line", "gostats", 1, []result{ok}, 0, time.Second,
			outputs{mackerelOutput{}, otlpOutput{}}, []outputErrors{{"otlp", "OTLP", 2}}, `
gostats_scrape.targets.found	1.000000	1795613637
gostats_scrape.targets.ok	1.000000	1795613637
gostats_scrape.targets.failed	0.000000	1795613637
gostats_scrape.run.seconds	1.000000	1795613637
gostats_scrape.discovery.errors	0.000000	1795613637
gostats_scrape.otlp.errors	2.000000	1795613637
`},
		{"an output that counts errors, none this run (discovery failed)", "gostats", 0, nil, 1, time.Second,
			outputs{otlpOutput{}}, nil, `
gostats_scrape.targets.found	0.000000	1795613637
gostats_scrape.targets.ok	0.000000	1795613637
gostats_scrape.targets.failed	0.000000	1795613637
gostats_scrape.run.seconds	1.000000	1795613637
gostats_scrape.discovery.errors	1.000000	1795613637
gostats_scrape.otlp.errors	0.000000	1795613637
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			h := healthOf(tt.found, tt.results, tt.discoveryErrors)
			h.elapsed, h.outputErrors = tt.elapsed, tt.outputErrors
			if err := printValues(&out, healthLines(tt.prefix, h, tt.outs, now)); err != nil {
				t.Fatal(err)
			}
			if want := strings.TrimPrefix(tt.want, "\n"); out.String() != want {
				t.Errorf("got\n%s\nwant\n%s", out.String(), want)
			}
		})
	}
}

// TestHealthGraphs: the health graphs in meta mode, exactly, and their keys
// never matched by a task graph's wildcard.
func TestHealthGraphs(t *testing.T) {
	var out bytes.Buffer
	mackerel := outputs{mackerelOutput{prefix: "gostats"}}
	if err := writeMeta(&out, mackerel, healthWriter{prefix: "gostats", outputs: mackerel}, true); err != nil {
		t.Fatal(err)
	}
	_, body, _ := strings.Cut(out.String(), "\n")
	var meta struct {
		Graphs map[string]json.RawMessage `json:"graphs"`
	}
	if err := json.Unmarshal([]byte(body), &meta); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"gostats_scrape.targets":   `{"label":"Gostats Scrape Targets","unit":"integer","metrics":[{"name":"found","label":"Found","stacked":false},{"name":"ok","label":"OK","stacked":false},{"name":"failed","label":"Failed","stacked":false}]}`,
		"gostats_scrape.run":       `{"label":"Gostats Scrape Run","unit":"seconds","metrics":[{"name":"seconds","label":"Wall Time","stacked":false}]}`,
		"gostats_scrape.discovery": `{"label":"Gostats Scrape Discovery","unit":"integer","metrics":[{"name":"errors","label":"Errors","stacked":false}]}`,
	}
	for name, g := range want {
		if got := string(meta.Graphs[name]); got != g {
			t.Errorf("graph %s:\n got  %s\n want %s", name, got, g)
		}
	}
	if len(meta.Graphs) != len(graphDefs)+len(want) {
		t.Errorf("%d graphs, want the %d task graphs and %d health graphs", len(meta.Graphs), len(graphDefs), len(want))
	}

	out.Reset()
	if err := writeMeta(&out, mackerel, healthWriter{prefix: "gostats", outputs: mackerel}, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "_scrape") {
		t.Errorf("health graphs printed without health:\n%s", out.String())
	}

	for _, prefix := range []string{"gostats", "gostats.prod"} {
		for _, l := range healthLines(prefix, health{}, nil, time.Unix(0, 0)) {
			for name := range graphDefinitions(prefix, nil) {
				if wildcardMatch(name, l.key) {
					t.Errorf("task graph %s matches health key %s", name, l.key)
				}
			}
			n := 0
			for name, g := range (healthWriter{prefix: prefix}).graphs() {
				for _, m := range g.Metrics {
					if name+"."+m.Name == l.key {
						n++
					}
				}
			}
			if n != 1 {
				t.Errorf("health key %s is in %d graphs, want 1", l.key, n)
			}
		}
	}
}

// wildcardMatch tells whether a graph name with # wildcards matches the
// graph part of key (key less its last segment), as mackerel-agent matches
// them.
func wildcardMatch(graph, key string) bool {
	i := strings.LastIndex(key, ".")
	if i < 0 {
		return false
	}
	g, k := strings.Split(graph, "."), strings.Split(key[:i], ".")
	if len(g) != len(k) {
		return false
	}
	for j := range g {
		if g[j] != "#" && g[j] != k[j] {
			return false
		}
	}
	return true
}

// parseLines returns key, value and time of `key\tvalue\tepoch` lines.
func parseLines(t *testing.T, stdout string) []metricLine {
	t.Helper()
	var lines []metricLine
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			t.Fatalf("not key<TAB>value<TAB>epoch: %q", l)
		}
		v, err1 := strconv.ParseFloat(f[1], 64)
		ts, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("bad line %q", l)
		}
		lines = append(lines, metricLine{f[0], v, ts})
	}
	return lines
}

// TestRunHealth runs the plugin in process with a clock whose first
// reading, the run's start, is 90 s in the past: run.seconds counts from
// it, and the other values are exact.
func TestRunHealth(t *testing.T) {
	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "")
	ports := append(fleet(t, 1, func(int) http.Handler { return realHandler }), uint16(refusingPort(t)))
	two, _ := fleetContainers(t, ports)
	daemon := func(body []byte) string { return (&standin.Docker{Containers: body}).Start(t, "unix") }
	const missing = "unix:///nonexistent/docker.sock"

	tests := []struct {
		name     string
		host     string
		args     []string
		code     int
		want     []float64 // found, ok, failed, run.seconds (0: checked against the start), discovery.errors; nil: no health lines
		wantKeys int       // task keys before the health lines
	}{
		{"one ok, one refused", daemon(two), nil, 0, []float64{2, 1, 1, 0, 0}, gaugesPerTask()},
		{"no targets", daemon([]byte("[]\n")), nil, 0, []float64{0, 0, 0, 0, 0}, 0},
		{"discovery failed", missing, nil, 1, []float64{0, 0, 0, 0, 1}, 0},
		{"--no-health", daemon(two), []string{"--no-health"}, 0, nil, gaugesPerTask()},
		{"--no-health, discovery failed", missing, []string{"--no-health"}, 1, nil, 0},
		{"--list, discovery failed", missing, []string{"--list"}, 1, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now().Add(-90 * time.Second)
			var started atomic.Bool
			clock := func() time.Time {
				if started.CompareAndSwap(false, true) {
					return start
				}
				return time.Now()
			}
			args := append([]string{"--docker-host", tt.host, "--timeout", "2s", "--tempfile", filepath.Join(t.TempDir(), "state")}, tt.args...)
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), defaultParts(clock), args, "test", &stdout, &stderr)
			elapsed := time.Since(start)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			lines := parseLines(t, stdout.String())
			if len(lines) != tt.wantKeys+len(tt.want) {
				t.Fatalf("%d lines, want %d task lines and %d health lines:\n%s", len(lines), tt.wantKeys, len(tt.want), stdout.String())
			}
			for _, l := range lines[:tt.wantKeys] {
				if strings.Contains(l.key, "_scrape.") {
					t.Errorf("health line %s among the task lines", l.key)
				}
			}
			health := lines[tt.wantKeys:]
			for i, l := range health {
				m := healthMetricDefs[i]
				if want := "gostats_scrape." + m.graph + "." + m.name; l.key != want {
					t.Errorf("line %d key %s, want %s", tt.wantKeys+i, l.key, want)
				}
				if tt.wantKeys > 0 && l.time != lines[0].time {
					t.Errorf("%s at %d, the task lines at %d", l.key, l.time, lines[0].time)
				}
				if m.graph == "run" {
					if l.value < 90 || l.value > elapsed.Seconds() {
						t.Errorf("run.seconds %f, want from 90 to %f (counted from the start)", l.value, elapsed.Seconds())
					}
				} else if l.value != tt.want[i] {
					t.Errorf("%s = %f, want %f", l.key, l.value, tt.want[i])
				}
			}
		})
	}
}
