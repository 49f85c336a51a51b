package main

// examples/monitors.json: its monitors name only metrics the plugin prints,
// and the real `mkr monitors diff` / `pull` / `push` carry them intact to a
// loopback stand-in for the Mackerel API.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// hostMonitor is a host metric monitor with exactly the fields mkr v0.65.0
// knows (mackerel-client-go's MonitorHostMetric): mkr drops any other field
// silently, so the example must have none.
type hostMonitor struct {
	ID                   string   `json:"id"`
	Name                 string   `json:"name"`
	Memo                 string   `json:"memo"`
	Type                 string   `json:"type"`
	IsMute               bool     `json:"isMute"`
	NotificationInterval uint64   `json:"notificationInterval"`
	Metric               string   `json:"metric"`
	Operator             string   `json:"operator"`
	Warning              *float64 `json:"warning"`
	Critical             *float64 `json:"critical"`
	Duration             uint64   `json:"duration"`
	MaxCheckAttempts     uint64   `json:"maxCheckAttempts"`
	Scopes               []string `json:"scopes"`
	ExcludeScopes        []string `json:"excludeScopes"`
}

// loadMonitors decodes a monitors file as `mkr monitors push` reads it,
// failing on any field mkr would drop.
func loadMonitors(t *testing.T, path string) []hostMonitor {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Monitors []json.RawMessage `json:"monitors"`
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var ms []hostMonitor
	for i, raw := range file.Monitors {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var m hostMonitor
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("%s: monitor %d: %v", path, i, err)
		}
		ms = append(ms, m)
	}
	return ms
}

func float(v float64) *float64 { return &v }

// exampleMonitors is what examples/monitors.json must hold
// (docs/alerting.md): targets failing for 3 minutes (warning) and 10 minutes
// (critical), as consecutive 1-minute checks, since a duration averages; a
// failed discovery (critical); runs near the default 5 s --timeout.
var exampleMonitors = []struct {
	metric             string
	warning, critical  *float64
	duration, attempts uint64
}{
	{"custom.gostats_scrape.targets.failed", float(0), nil, 1, 3},
	{"custom.gostats_scrape.targets.failed", nil, float(0), 1, 10},
	{"custom.gostats_scrape.discovery.errors", nil, float(0), 1, 1},
	{"custom.gostats_scrape.run.seconds", float(4), float(4.8), 10, 1},
}

// assertExampleMonitors checks ms (the file, or what the API received)
// against exampleMonitors.
func assertExampleMonitors(t *testing.T, ms []hostMonitor) {
	t.Helper()
	if len(ms) != len(exampleMonitors) {
		t.Fatalf("%d monitors, want %d", len(ms), len(exampleMonitors))
	}
	str := func(f *float64) string {
		if f == nil {
			return "null"
		}
		return fmt.Sprint(*f)
	}
	for i, w := range exampleMonitors {
		m := ms[i]
		if m.Type != "host" || m.Name == "" || m.Memo == "" || m.Metric != w.metric || m.Operator != ">" ||
			str(m.Warning) != str(w.warning) || str(m.Critical) != str(w.critical) ||
			m.Duration != w.duration || m.MaxCheckAttempts != w.attempts ||
			!slices.Equal(m.Scopes, []string{exampleRole}) || len(m.ExcludeScopes) != 0 || m.IsMute {
			t.Errorf("monitor %d %q: %s > warning %s critical %s, duration %d, maxCheckAttempts %d, scopes %q\n"+
				"want host monitor of %s > warning %s critical %s, duration %d, maxCheckAttempts %d, scopes [%q]",
				i, m.Name, m.Metric, str(m.Warning), str(m.Critical), m.Duration, m.MaxCheckAttempts, m.Scopes,
				w.metric, str(w.warning), str(w.critical), w.duration, w.attempts, exampleRole)
		}
	}
}

// TestMonitorsExample: every monitor watches a health metric the plugin
// prints (healthMetrics, which the integration tests check against the
// built binary), within the limits Mackerel accepts, with unique names and
// no id (so mkr matches them by name).
func TestMonitorsExample(t *testing.T) {
	ms := loadMonitors(t, "examples/monitors.json")
	assertExampleMonitors(t, ms)
	names := map[string]bool{}
	for _, m := range ms {
		metric, ok := strings.CutPrefix(m.Metric, "custom."+healthPrefix)
		if !ok || !slices.Contains(healthMetrics, metric) {
			t.Errorf("%q watches %s, not a metric the plugin prints", m.Name, m.Metric)
		}
		if m.ID != "" || names[m.Name] {
			t.Errorf("%q: has an id, or its name is not unique", m.Name)
		}
		names[m.Name] = true
		if m.Duration < 1 || m.Duration > 10 || m.MaxCheckAttempts < 1 || m.MaxCheckAttempts > 10 ||
			m.Warning == nil && m.Critical == nil {
			t.Errorf("%q: duration and maxCheckAttempts must be 1 to 10, and a threshold set", m.Name)
		}
		// Thresholds on the run time must be reachable: below the default --timeout.
		const timeout = 5 * time.Second
		for _, th := range []*float64{m.Warning, m.Critical} {
			if metric == "run.seconds" && th != nil && *th >= timeout.Seconds() {
				t.Errorf("%q: threshold %v s is not below the default --timeout %s", m.Name, *th, timeout)
			}
		}
	}
}

// mackerelAPI stands in for the monitors and dashboards of the Mackerel API
// that mkr uses: it holds them as the API does (with ids), serves them, and
// records every write. Every request must carry the API key test-api-key.
type mackerelAPI struct {
	mu         sync.Mutex
	monitors   []map[string]any
	dashboards []map[string]any
	writes     []apiWrite
	nextID     int
}

type apiWrite struct {
	method, path string
	body         map[string]any
}

func (a *mackerelAPI) handler(t *testing.T) http.Handler {
	reply := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	index := func(id string) int {
		return slices.IndexFunc(a.monitors, func(m map[string]any) bool { return m["id"] == id })
	}
	mux := http.NewServeMux()
	// each kind: its list, and a POST that creates one with an id of its own
	for kind, k := range map[string]struct {
		held   *[]map[string]any
		prefix string // of the ids it gives
	}{"monitors": {&a.monitors, "4gostats"}, "dashboards": {&a.dashboards, "5gostats"}} {
		mux.HandleFunc("GET /api/v0/"+kind, func(w http.ResponseWriter, r *http.Request) {
			reply(w, map[string]any{kind: *k.held})
		})
		mux.HandleFunc("POST /api/v0/"+kind, func(w http.ResponseWriter, r *http.Request) {
			m := a.record(w, r)
			if m == nil {
				return
			}
			a.nextID++
			m["id"] = fmt.Sprintf("%s%03d", k.prefix, a.nextID)
			*k.held = append(*k.held, m)
			reply(w, m)
		})
	}
	mux.HandleFunc("PUT /api/v0/monitors/{id}", func(w http.ResponseWriter, r *http.Request) {
		i := index(r.PathValue("id"))
		m := a.record(w, r)
		if m == nil {
			return
		}
		if i < 0 {
			http.Error(w, `{"error":{"message":"Monitor not found"}}`, http.StatusNotFound)
			return
		}
		m["id"] = r.PathValue("id")
		a.monitors[i] = m
		reply(w, m)
	})
	mux.HandleFunc("DELETE /api/v0/monitors/{id}", func(w http.ResponseWriter, r *http.Request) {
		i := index(r.PathValue("id"))
		a.record(w, r)
		if i < 0 {
			http.Error(w, `{"error":{"message":"Monitor not found"}}`, http.StatusNotFound)
			return
		}
		m := a.monitors[i]
		a.monitors = slices.Delete(a.monitors, i, i+1)
		reply(w, m)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Header.Get("X-Api-Key") != "test-api-key" {
			t.Errorf("%s %s without the API key", r.Method, r.URL.Path)
			http.Error(w, `{"error":{"message":"Authentication failed"}}`, http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// record logs a write and returns its JSON body (nil after answering 400
// when a POST or PUT body is not a JSON object).
func (a *mackerelAPI) record(w http.ResponseWriter, r *http.Request) map[string]any {
	b, _ := io.ReadAll(r.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil && r.Method != http.MethodDelete {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil
	}
	a.writes = append(a.writes, apiWrite{r.Method, r.URL.Path, maps.Clone(m)})
	return m
}

// takeWrites returns the writes since the last call.
func (a *mackerelAPI) takeWrites() []apiWrite {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.writes
	a.writes = nil
	return w
}

// mkrBin is the mkr to test with; under CI it must be given.
func mkrBin(t *testing.T) string {
	t.Helper()
	return toolBin(t, "MKR_BIN", "mkr")
}

// TestMkrMonitorsDiffPush runs the steps of docs/alerting.md with the real
// mkr against a stand-in holding one monitor of the organization already:
// the example file alone would delete it; pulled, merged with the example,
// diffed and pushed, it creates exactly the example's monitors, intact; a
// second push changes nothing; an edited threshold is one PUT.
func TestMkrMonitorsDiffPush(t *testing.T) {
	mkr := mkrBin(t)
	existing := map[string]any{"id": "2cSZzK3XfmA", "type": "connectivity", "name": "connectivity", "scopes": []any{exampleRole}}
	api := &mackerelAPI{monitors: []map[string]any{existing}}
	srv := httptest.NewServer(api.handler(t))
	defer srv.Close()
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(mkr, append([]string{"--apibase", srv.URL, "monitors"}, args...)...)
		cmd.Env = append(os.Environ(), "MACKEREL_APIKEY=test-api-key")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("mkr monitors %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	summary := func(out string) string {
		first, _, _ := strings.Cut(out, "\n")
		return first
	}

	// The example alone is not the organization's whole set: push would delete the rest.
	if got, want := summary(run("diff", "--file-path", "examples/monitors.json")), "Summary: 0 modify, 4 append, 1 remove"; got != want {
		t.Errorf("diff of the example alone: %q, want %q", got, want)
	}

	// docs/alerting.md: pull, add the example's monitors to the pulled file.
	merged := filepath.Join(dir, "monitors.json")
	run("pull", "--file-path", merged)
	var pulled, example struct {
		Monitors []json.RawMessage `json:"monitors"`
	}
	for path, v := range map[string]any{merged: &pulled, "examples/monitors.json": &example} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(pulled.Monitors) != 1 {
		t.Fatalf("pulled %d monitors, want the existing one", len(pulled.Monitors))
	}
	writeMerged := func(extra []json.RawMessage) {
		t.Helper()
		b, err := json.MarshalIndent(map[string]any{"monitors": append(append([]json.RawMessage{}, pulled.Monitors...), extra...)}, "", "    ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(merged, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeMerged(example.Monitors)

	out := run("diff", "--file-path", merged)
	if got, want := summary(out), "Summary: 0 modify, 4 append, 0 remove"; got != want {
		t.Errorf("diff: %q, want %q\n%s", got, want, out)
	}
	for _, m := range loadMonitors(t, "examples/monitors.json") {
		if !strings.Contains(out, fmt.Sprintf(`+  "name": %q`, m.Name)) {
			t.Errorf("diff does not show %q as added:\n%s", m.Name, out)
		}
	}
	if w := api.takeWrites(); len(w) != 0 {
		t.Fatalf("pull and diff wrote: %+v", w)
	}

	run("push", "--file-path", merged)
	writes := api.takeWrites()
	var sent []hostMonitor
	for i, w := range writes {
		if w.method != http.MethodPost || w.path != "/api/v0/monitors" {
			t.Errorf("write %d: %s %s, want only POST /api/v0/monitors", i, w.method, w.path)
			continue
		}
		// mkr sends each monitor as the file has it, no field lost or added.
		var want map[string]any
		if i < len(example.Monitors) {
			json.Unmarshal(example.Monitors[i], &want)
		}
		if !reflect.DeepEqual(w.body, want) {
			t.Errorf("POST %d body\n %v\nwant the file's\n %v", i, w.body, want)
		}
		b, _ := json.Marshal(w.body)
		var m hostMonitor
		json.Unmarshal(b, &m)
		sent = append(sent, m)
	}
	assertExampleMonitors(t, sent)

	// In step: nothing to do.
	if got, want := summary(run("diff", "--file-path", merged)), "Summary: 0 modify, 0 append, 0 remove"; got != want {
		t.Errorf("diff after push: %q, want %q", got, want)
	}
	run("push", "--file-path", merged)
	if w := api.takeWrites(); len(w) != 0 {
		t.Errorf("second push wrote: %+v", w)
	}

	// An edited threshold is one update of that monitor, found by its name.
	edited := slices.Clone(example.Monitors)
	var last map[string]any
	json.Unmarshal(edited[3], &last)
	last["warning"] = 3.5
	edited[3], _ = json.Marshal(last)
	writeMerged(edited)
	if got, want := summary(run("diff", "--file-path", merged)), "Summary: 1 modify, 0 append, 0 remove"; got != want {
		t.Errorf("diff after an edit: %q, want %q", got, want)
	}
	run("push", "--file-path", merged)
	writes = api.takeWrites()
	if len(writes) != 1 || writes[0].method != http.MethodPut || writes[0].path != "/api/v0/monitors/4gostats004" ||
		writes[0].body["warning"] != 3.5 || writes[0].body["name"] != last["name"] {
		t.Errorf("push after an edit: %+v, want one PUT /api/v0/monitors/4gostats004 with warning 3.5", writes)
	}
}
