package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	mp "github.com/mackerelio/go-mackerel-plugin-helper"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphDefinitionGolden(t *testing.T) {
	got, err := json.MarshalIndent(plugin{prefix: "gostats"}.GraphDefinition(), "", "  ")
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

// helperPattern is how go-mackerel-plugin-helper v0.1.3 matches a wildcard
// graph's metric against keys (formatValuesWithWildcard): anchored at the
// start only.
func helperPattern(graphKey, metric string) *regexp.Regexp {
	s := `\A` + graphKey + "." + metric
	s = strings.ReplaceAll(s, ".", `\.`)
	s = strings.ReplaceAll(s, "#", "[-a-zA-Z0-9_]+")
	return regexp.MustCompile(s)
}

var keyRule = regexp.MustCompile(`^[-a-zA-Z0-9_.]+$`)

// TestEveryKeyHasExactlyOneGraph checks every key the plugin can emit
// against every graph metric, as the helper matches them.
func TestEveryKeyHasExactlyOneGraph(t *testing.T) {
	for _, prefix := range []string{"gostats", "app.go-stats_2"} {
		p := plugin{prefix: prefix, results: []result{{
			target: Target{ContainerID: "c1", HostPort: 32768},
			values: allValues(),
		}}}
		values, _ := p.FetchMetrics()
		graphs := p.GraphDefinition()
		for key := range values {
			if key == containersKey {
				continue
			}
			if !keyRule.MatchString(key) {
				t.Errorf("key %q breaks the metric name rule", key)
			}
			var matched []string
			for gk, g := range graphs {
				for _, m := range g.Metrics {
					if helperPattern(gk, m.Name).MatchString(key) {
						matched = append(matched, gk+"."+m.Name)
					}
				}
			}
			if len(matched) != 1 {
				t.Errorf("key %s is matched by %d graph metrics %v, want 1", key, len(matched), matched)
			}
		}
		if len(values)-1 != len(metricDefs) {
			t.Errorf("prefix %s: %d keys, want %d", prefix, len(values)-1, len(metricDefs))
		}
	}
	if len(metricDefs) > 20 {
		t.Errorf("%d metrics per task; keep at most 20 (Mackerel bills per 200 metrics on a host)", len(metricDefs))
	}
}

func allValues() map[string]float64 {
	v := map[string]float64{}
	for _, m := range metricDefs {
		v[m.key()] = 1
	}
	return v
}

func TestGraphLabels(t *testing.T) {
	for key, g := range (plugin{prefix: "gostats"}).GraphDefinition() {
		if !strings.HasPrefix(key, "gostats.#.") {
			t.Errorf("graph key %s does not start with gostats.#.", key)
		}
		if !strings.HasPrefix(g.Label, "Gostats ") || strings.Contains(g.Label, "#") {
			t.Errorf("graph %s label %q", key, g.Label)
		}
		switch g.Unit { // the units mackerel-agent accepts
		case "float", "integer", "percentage", "seconds", "milliseconds", "bytes", "bytes/sec", "bits/sec", "iops":
		default:
			t.Errorf("graph %s unit %q", key, g.Unit)
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	tests := []struct {
		name     string
		args     []string
		env      string
		code     int
		done     bool
		stdout   string
		stderr   string
		validate func(t *testing.T, o options)
	}{
		{name: "defaults", validate: func(t *testing.T, o options) {
			if o.DockerHost != "unix:///var/run/docker.sock" || o.Path != "/stats" || o.Scheme != "http" ||
				o.Timeout != 5*time.Second || o.Concurrency != 128 || o.Prefix != "gostats" || o.ContainerPort != 0 {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "DOCKER_HOST", env: "tcp://127.0.0.1:2375", validate: func(t *testing.T, o options) {
			if o.DockerHost != "tcp://127.0.0.1:2375" {
				t.Errorf("DockerHost = %s", o.DockerHost)
			}
		}},
		{name: "repeatable filters", args: []string{"-l", "a=b", "--label", "c", "-n", "web", "--name", "api", "-P", "8080", "-t", "2s"},
			validate: func(t *testing.T, o options) {
				if strings.Join(o.Labels, ",") != "a=b,c" || strings.Join(o.Names, ",") != "web,api" || o.ContainerPort != 8080 || o.Timeout != 2*time.Second {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "help", args: []string{"--help"}, code: 0, done: true, stdout: "Usage:\n  mackerel-plugin-ecs-gostats [OPTIONS]\n"},
		{name: "unknown flag", args: []string{"--port", "8080"}, code: 2, done: true, stderr: "mackerel-plugin-ecs-gostats: unknown flag `port'\n"},
		{name: "bad scheme", args: []string{"--scheme", "ftp"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: Invalid value `ftp' for option `--scheme'. Allowed values are: http or https\n"},
		{name: "bad timeout", args: []string{"--timeout", "5"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: invalid argument for flag `-t, --timeout' (expected time.Duration): time: missing unit in duration \"5\"\n"},
		{name: "bad prefix", args: []string{"--metric-key-prefix", "gostats.#"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --metric-key-prefix \"gostats.#\": use letters, digits, '-', '_' and '.' only\n"},
		{name: "zero concurrency", args: []string{"-c", "0"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --concurrency 0: must be at least 1\n"},
		{name: "relative path", args: []string{"--path", "stats"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --path \"stats\": must start with /\n"},
		{name: "stray argument", args: []string{"8080"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: unexpected argument \"8080\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.env)
			var stdout, stderr bytes.Buffer
			o, code, done := parseOptions(tt.args, &stdout, &stderr)
			if code != tt.code || done != tt.done {
				t.Errorf("code, done = %d, %v; want %d, %v (stderr %q)", code, done, tt.code, tt.done, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tt.stdout) {
				t.Errorf("stdout = %q, want prefix %q", stdout.String(), tt.stdout)
			}
			if stderr.String() != tt.stderr {
				t.Errorf("stderr = %q\nwant %q", stderr.String(), tt.stderr)
			}
			if tt.validate != nil {
				tt.validate(t, o)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), []string{"--version"}, "v1.2.3", &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if stdout.String() != "mackerel-plugin-ecs-gostats v1.2.3\n" {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestPrintList(t *testing.T) {
	results := []result{
		{target: Target{ContainerID: "d6f4005db94f0123", ContainerName: "ecs-web-3-web-e8c6", Family: "web", Host: "127.0.0.1", HostPort: 32769}, latency: 2340 * time.Microsecond, values: allValues()},
		{target: Target{ContainerID: "d01217798a9a0123", ContainerName: "ecs-api-7-api-9a8b", Host: "127.0.0.1", HostPort: 32770},
			err: scrapeError(Target{ContainerID: "d01217798a9a0123", ContainerName: "ecs-api-7-api-9a8b", Host: "127.0.0.1", HostPort: 32770}, options{Scheme: "http", Path: "/stats"}, errors.New("unexpected status 500 Internal Server Error"))},
	}
	var out bytes.Buffer
	printList(&out, results)
	want := "ecs-web-3-web-e8c6  d6f4005db94f  web  127.0.0.1:32769  ok 2.3ms\n" +
		"ecs-api-7-api-9a8b  d01217798a9a  -    127.0.0.1:32770  error: unexpected status 500 Internal Server Error\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// captureStdout runs f with os.Stdout redirected, since the helper prints
// there, and returns the printed lines sorted.
func captureStdout(t *testing.T, f func()) []string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	orig := os.Stdout
	os.Stdout = w
	defer func() { os.Stdout = orig }()
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		done <- b
	}()
	f()
	w.Close()
	out := strings.TrimSpace(string(<-done))
	if out == "" {
		return nil
	}
	lines := strings.Split(out, "\n")
	sort.Strings(lines)
	return lines
}

// keysAndValues turns "key\tvalue\ttime" lines into "key value".
func keysAndValues(lines []string) []string {
	var out []string
	for _, l := range lines {
		f := strings.Split(l, "\t")
		out = append(out, f[0]+" "+f[1])
	}
	return out
}

// output runs the helper the way Run does, against a state file.
func output(t *testing.T, state string, results []result) []string {
	p := plugin{prefix: "gostats", results: results, perPort: true}
	h := mp.NewMackerelPlugin(p)
	h.Tempfile = state
	rates, err := prepareState(state, p.prefix, results, time.Now())
	if err != nil || !rates {
		t.Fatalf("prepareState: %v, %v", rates, err)
	}
	return captureStdout(t, h.OutputValues)
}

func counterResult(port uint16, container string, mallocs float64) result {
	return result{
		target: Target{ContainerID: container, HostPort: port},
		values: map[string]float64{"operation.memory_mallocs": mallocs, "memory.memory_sys": 1000},
	}
}

// writeState writes a helper state file as of age ago.
func writeState(t *testing.T, path string, age time.Duration, values map[string]interface{}) {
	t.Helper()
	values["_lastTime"] = time.Now().Add(-age).Unix()
	b, _ := json.Marshal(values)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestRates(t *testing.T) {
	lastRun := map[string]interface{}{
		"gostats.32768.operation.memory_mallocs": 1000.0,
		"gostats.32769.operation.memory_mallocs": 5000.0,
		containersKey:                            map[string]interface{}{"32768": "aaa", "32769": "bbb"},
	}
	tests := []struct {
		name    string
		age     time.Duration
		state   map[string]interface{}
		results []result
		want    []string
	}{
		{"counters a minute apart", time.Minute, lastRun,
			[]result{counterResult(32768, "aaa", 4000), counterResult(32769, "bbb", 5600)},
			[]string{
				"gostats.32768.memory.memory_sys 1000.000000", "gostats.32768.operation.memory_mallocs 3000.000000",
				"gostats.32769.memory.memory_sys 1000.000000", "gostats.32769.operation.memory_mallocs 600.000000",
			}},
		{"task replaced on the same port, new counter above the old", time.Minute, lastRun,
			[]result{counterResult(32768, "ccc", 90000), counterResult(32769, "bbb", 5600)},
			[]string{
				"gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.memory.memory_sys 1000.000000", "gostats.32769.operation.memory_mallocs 600.000000",
			}},
		{"process restarted in the same container", time.Minute, lastRun,
			[]result{counterResult(32768, "aaa", 10), counterResult(32769, "bbb", 5600)},
			[]string{
				"gostats.32768.memory.memory_sys 1000.000000",
				"gostats.32769.memory.memory_sys 1000.000000", "gostats.32769.operation.memory_mallocs 600.000000",
			}},
		{"gap longer than 10 minutes", 11 * time.Minute, lastRun,
			[]result{counterResult(32768, "aaa", 4000)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
		{"no state yet", 0, nil,
			[]result{counterResult(32768, "aaa", 4000)},
			[]string{"gostats.32768.memory.memory_sys 1000.000000"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			if tt.state != nil {
				copied := map[string]interface{}{}
				for k, v := range tt.state {
					copied[k] = v
				}
				writeState(t, state, tt.age, copied)
			}
			got := keysAndValues(output(t, state, tt.results))
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestReplacedTaskRatesResume: the run after a replacement has rates again.
func TestReplacedTaskRatesResume(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	writeState(t, state, time.Minute, map[string]interface{}{
		"gostats.32768.operation.memory_mallocs": 1000.0,
		containersKey:                            map[string]interface{}{"32768": "aaa"},
	})
	output(t, state, []result{counterResult(32768, "ccc", 90000)})
	// Age the state as if a minute had passed.
	var saved map[string]interface{}
	b, _ := os.ReadFile(state)
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if saved[containersKey].(map[string]interface{})["32768"] != "ccc" {
		t.Fatalf("state does not record the new container: %v", saved)
	}
	writeState(t, state, time.Minute, saved)
	got := keysAndValues(output(t, state, []result{counterResult(32768, "ccc", 93000)}))
	want := "gostats.32768.memory.memory_sys 1000.000000\ngostats.32768.operation.memory_mallocs 3000.000000"
	if strings.Join(got, "\n") != want {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), want)
	}
}

func TestPrepareState(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	results := []result{counterResult(32768, "aaa", 10)}
	fresh, _ := json.Marshal(map[string]interface{}{"_lastTime": time.Now().Unix()})
	tests := []struct {
		name      string
		path      string
		content   []byte // nil: no file
		wantRates bool
		wantErr   string
	}{
		{"missing", filepath.Join(dir, "missing"), nil, true, ""},
		{"empty", filepath.Join(dir, "empty"), []byte{}, true, ""},
		{"truncated", filepath.Join(dir, "truncated"), []byte(`{"gostats.32768.operation.memory_mallocs":10,"_la`), true, ""},
		{"not JSON", filepath.Join(dir, "garbage"), []byte("\x00\xff garbage"), true, ""},
		{"directory not writable", filepath.Join(notDir, "state"), nil, false,
			"rates left out: state file not writable: open " + notDir + "/state: not a directory"},
		{"saved by another run a moment ago", filepath.Join(dir, "fresh"), fresh, false,
			"rates left out: another run saved " + dir + "/fresh less than a second ago"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content != nil {
				os.WriteFile(tt.path, tt.content, 0o600)
			}
			rates, err := prepareState(tt.path, "gostats", results, time.Now())
			if rates != tt.wantRates || (err == nil) != (tt.wantErr == "") || (err != nil && err.Error() != tt.wantErr) {
				t.Errorf("rates %v, err %v\nwant %v, %q", rates, err, tt.wantRates, tt.wantErr)
			}
			if _, statErr := os.Stat(tt.path); tt.content == nil && statErr == nil {
				t.Error("prepareState left a file behind")
			}
		})
	}
}

// TestStateFaultsNeverBreakOutput runs the helper over each bad state: gauges
// are always printed, rates never bogus, and the state is valid afterwards
// whenever it can be written.
func TestStateFaultsNeverBreakOutput(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, nil, 0o600)
	for name, content := range map[string][]byte{"empty": {}, "truncated": []byte(`{"gostats.3`), "not JSON": []byte("<html>")} {
		t.Run(name, func(t *testing.T) {
			state := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			os.WriteFile(state, content, 0o600)
			got := keysAndValues(output(t, state, []result{counterResult(32768, "aaa", 10)}))
			if strings.Join(got, ",") != "gostats.32768.memory.memory_sys 1000.000000" {
				t.Errorf("output %v", got)
			}
			var saved map[string]interface{}
			b, _ := os.ReadFile(state)
			if err := json.Unmarshal(b, &saved); err != nil || saved["gostats.32768.operation.memory_mallocs"] != 10.0 {
				t.Errorf("state not replaced: %s (%v)", b, err)
			}
		})
	}
	t.Run("unwritable", func(t *testing.T) {
		results := []result{counterResult(32768, "aaa", 10)}
		rates, err := prepareState(filepath.Join(notDir, "state"), "gostats", results, time.Now())
		if rates || err == nil {
			t.Fatalf("rates %v, err %v", rates, err)
		}
		h := mp.NewMackerelPlugin(plugin{prefix: "gostats", results: results, perPort: true, noRates: true})
		h.Tempfile = filepath.Join(notDir, "state")
		got := keysAndValues(captureStdout(t, h.OutputValues)) // the helper would exit if it tried to save
		if strings.Join(got, ",") != "gostats.32768.memory.memory_sys 1000.000000" {
			t.Errorf("output %v", got)
		}
	})
}

// TestPerPortGraphsPrintAsWildcards: the per-port graphs used for printing
// give the same lines, rates included, as the wildcard graphs of meta mode.
func TestPerPortGraphsPrintAsWildcards(t *testing.T) {
	var results []result
	for i, c := range []string{"aaa", "bbb", "ccc"} {
		results = append(results, result{target: Target{ContainerID: c, HostPort: uint16(32768 + i)}, values: allValues()})
	}
	results = append(results, result{target: Target{ContainerID: "ddd", HostPort: 32771}, err: errors.New("down")})
	print := func(perPort bool) []string {
		state := filepath.Join(t.TempDir(), "state")
		writeState(t, state, time.Minute, map[string]interface{}{
			"gostats.32768.operation.memory_mallocs": 0.5,
			"gostats.32769.gc.gc_num":                0.0,
			containersKey:                            map[string]interface{}{"32768": "aaa", "32769": "bbb"},
		})
		h := mp.NewMackerelPlugin(plugin{prefix: "gostats", results: results, perPort: perPort})
		h.Tempfile = state
		return keysAndValues(captureStdout(t, h.OutputValues))
	}
	wildcard, perPort := print(false), print(true)
	if strings.Join(wildcard, "\n") != strings.Join(perPort, "\n") {
		t.Errorf("wildcard graphs print\n%s\nper-port graphs print\n%s", strings.Join(wildcard, "\n"), strings.Join(perPort, "\n"))
	}
	if len(perPort) != 3*11+2 {
		t.Errorf("%d lines, want 3 tasks' gauges and 2 rates:\n%s", len(perPort), strings.Join(perPort, "\n"))
	}
}
