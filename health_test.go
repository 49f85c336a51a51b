package main

// Integration tests of the health metrics: the run's own figures
// (gostats_scrape.*), printed by the built binary over the shared tasks, on
// a failed discovery, and posted by a real mackerel-agent.

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// healthPrefix is the first part of every health metric key with the
// default --metric-key-prefix.
const healthPrefix = "gostats_scrape."

// healthMetrics are the health metrics, in the order the plugin prints them
// after the task lines. The monitors example may name only these.
var healthMetrics = []string{"targets.found", "targets.ok", "targets.failed", "run.seconds", "discovery.errors"}

// isHealthKey tells a health metric key, as printed or as mackerel-agent
// posts it (custom.gostats_scrape.*), from a task key.
func isHealthKey(key string) bool {
	return strings.HasPrefix(strings.TrimPrefix(key, "custom."), healthPrefix)
}

// withoutHealth is m less its health metrics: what the tests of task keys
// compare.
func withoutHealth(m map[string]float64) map[string]float64 {
	out := make(map[string]float64, len(m))
	for k, v := range m {
		if !isHealthKey(k) {
			out[k] = v
		}
	}
	return out
}

// health is the health figures of a run; run.seconds is checked apart.
type health struct{ found, ok, failed, discoveryErrors int }

// assertHealth checks that m (keys as printed, or with prefix "custom." as
// posted) holds exactly the five health metrics, with the figures of want
// and run.seconds above 0 and below limit. It returns run.seconds.
func assertHealth(t *testing.T, m map[string]float64, prefix string, want health, limit time.Duration) float64 {
	t.Helper()
	var got []string
	for k := range m {
		if isHealthKey(k) {
			got = append(got, k)
		}
	}
	slices.Sort(got)
	var keys []string
	for _, h := range healthMetrics {
		keys = append(keys, prefix+healthPrefix+h)
	}
	if wantKeys := slices.Sorted(slices.Values(keys)); !slices.Equal(got, wantKeys) {
		t.Errorf("health keys\n got  %q\n want %q", got, wantKeys)
	}
	for i, v := range []int{want.found, want.ok, want.failed, -1, want.discoveryErrors} {
		if v >= 0 && m[keys[i]] != float64(v) {
			t.Errorf("%s = %f, want %d", keys[i], m[keys[i]], v)
		}
	}
	secs := m[prefix+healthPrefix+"run.seconds"]
	if secs <= 0 || secs >= limit.Seconds() {
		t.Errorf("run.seconds = %f, want above 0 and below %s", secs, limit)
	}
	return secs
}

// assertOnlyHealth checks that stdout is the five health lines and nothing
// else, in their order, with the figures of want.
func assertOnlyHealth(t *testing.T, stdout string, want health, limit time.Duration) {
	t.Helper()
	var keys []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		keys = append(keys, strings.Split(l, "\t")[0])
	}
	var wantKeys []string
	for _, h := range healthMetrics {
		wantKeys = append(wantKeys, healthPrefix+h)
	}
	if !slices.Equal(keys, wantKeys) {
		t.Errorf("stdout keys %q, want %q; stdout:\n%s", keys, wantKeys, stdout)
	}
	assertHealth(t, parseMetrics(t, stdout), "", want, limit)
}

// stdoutKeys are the keys of stdout's lines, in order.
func stdoutKeys(stdout string) []string {
	var keys []string
	for _, l := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if l != "" {
			keys = append(keys, strings.Split(l, "\t")[0])
		}
	}
	return keys
}

// TestHealthOverTasks: over the shared healthy and broken tasks (a hung one
// among them) the figures are exact, the health lines come after the task
// lines, and run.seconds is the whole run: at least the --timeout the hung
// task held it, less than the process's own wall time.
func TestHealthOverTasks(t *testing.T) {
	needDocker(t)
	if !slices.ContainsFunc(broken, func(tk task) bool { return tk.mode == "hang" }) {
		t.Fatal("no hung task among the broken ones")
	}
	r := runPlugin(t, nil, clusterArgs(filepath.Join(t.TempDir(), "state"))...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	secs := assertHealth(t, parseMetrics(t, r.stdout), "",
		health{found: len(healthy) + len(broken), ok: len(healthy), failed: len(broken)}, scrapeTimeout+runMargin)
	if secs < scrapeTimeout.Seconds() || secs > r.elapsed.Seconds() {
		t.Errorf("run.seconds = %f, want from --timeout %s (the hung task) to the process's %s", secs, scrapeTimeout, r.elapsed)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	t.Logf("health lines:\n%s", strings.Join(lines[max(0, len(lines)-len(healthMetrics)):], "\n"))
	keys := stdoutKeys(r.stdout)
	var want []string
	for _, h := range healthMetrics {
		want = append(want, healthPrefix+h)
	}
	if len(keys) < len(want) || !slices.Equal(keys[len(keys)-len(want):], want) ||
		slices.ContainsFunc(keys[:len(keys)-len(want)], isHealthKey) {
		t.Errorf("keys %q, want the task keys, then %q", keys, want)
	}
}

// TestHealthNoTargets: a filter matching no container prints found 0, ok 0,
// failed 0 and no discovery error: no tasks, not no data.
func TestHealthNoTargets(t *testing.T) {
	needDocker(t)
	r := runPlugin(t, nil, "--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster="+cluster+"-none",
		"--timeout", scrapeTimeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state"))
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", r.code, r.stderr)
	}
	assertOnlyHealth(t, r.stdout, health{}, scrapeTimeout)
}

// TestHealthOff: --no-health prints none of them, over the tasks or when
// discovery fails.
func TestHealthOff(t *testing.T) {
	needDocker(t)
	r := runPlugin(t, nil, append(clusterArgs(filepath.Join(t.TempDir(), "state")), "--no-health")...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	m := parseMetrics(t, r.stdout)
	if len(withoutHealth(m)) != len(m) {
		t.Errorf("health keys printed with --no-health:\n%s", r.stdout)
	}
	assertKeys(t, m, keysFor(portsOf(healthy), gaugeMetrics))

	r = runPlugin(t, nil, "--no-health", "--docker-host", "unix:///nonexistent/docker.sock",
		"--tempfile", filepath.Join(t.TempDir(), "state"))
	if r.code != 1 || r.stdout != "" {
		t.Errorf("exit %d, stdout %q; want 1 and nothing", r.code, r.stdout)
	}
}

type metaGraph struct {
	Label   string `json:"label"`
	Unit    string `json:"unit"`
	Metrics []struct {
		Name string `json:"name"`
	} `json:"metrics"`
}

// TestMetaCoversHealth: in meta mode (default options), every key a run over
// the tasks prints is covered by exactly one graph metric, and every health
// graph metric is printed.
func TestMetaCoversHealth(t *testing.T) {
	needDocker(t)
	state := filepath.Join(t.TempDir(), "state")
	r := runPlugin(t, []string{"MACKEREL_AGENT_PLUGIN_META=1"}, clusterArgs(state)...)
	if r.code != 0 {
		t.Fatalf("meta: exit %d; stderr:\n%s", r.code, r.stderr)
	}
	head, body, _ := strings.Cut(r.stdout, "\n")
	var meta struct {
		Graphs map[string]metaGraph `json:"graphs"`
	}
	if err := json.Unmarshal([]byte(body), &meta); head != "# mackerel-agent-plugin" || err != nil {
		t.Fatalf("meta: %v\n%s", err, r.stdout)
	}
	r = runPlugin(t, nil, clusterArgs(state)...)
	printed := parseMetrics(t, r.stdout)
	if len(withoutHealth(printed)) == 0 || len(withoutHealth(printed)) == len(printed) {
		t.Fatalf("want task and health keys:\n%s", r.stdout)
	}
	for key := range printed {
		var covering []string
		for name, g := range meta.Graphs {
			for _, m := range g.Metrics {
				if graphMatches(name, key, m.Name) {
					covering = append(covering, name+"."+m.Name)
				}
			}
		}
		if len(covering) != 1 {
			t.Errorf("%s is covered by %q, want exactly one graph metric", key, covering)
		}
	}
	var healthGraphs int
	for name, g := range meta.Graphs {
		if !strings.HasPrefix(name, healthPrefix) {
			continue
		}
		healthGraphs++
		if !strings.HasPrefix(g.Label, "Gostats Scrape ") {
			t.Errorf("graph %s label %q, want \"Gostats Scrape <Name>\"", name, g.Label)
		}
		if !slices.Contains([]string{"float", "integer", "percentage", "seconds", "milliseconds", "bytes", "bytes/sec", "bits/sec", "iops"}, g.Unit) {
			t.Errorf("graph %s unit %q is not one mackerel-agent knows", name, g.Unit)
		}
		for _, m := range g.Metrics {
			if _, ok := printed[name+"."+m.Name]; !ok {
				t.Errorf("graph metric %s.%s is never printed", name, m.Name)
			}
		}
	}
	if healthGraphs != 3 {
		t.Errorf("%d health graphs, want 3 (targets, run, discovery)", healthGraphs)
	}
}

// graphMatches tells whether key is metric of graph, a graph name where #
// stands for any one segment.
func graphMatches(graph, key, metric string) bool {
	g, k := strings.Split(graph+"."+metric, "."), strings.Split(key, ".")
	if len(g) != len(k) {
		return false
	}
	for i := range g {
		if g[i] != "#" && g[i] != k[i] {
			return false
		}
	}
	return true
}

// TestMackerelAgentOnceHealth: a real mackerel-agent posts the health
// metrics (agentOnce in integration_test.go), also from a run that exited 1
// because the Docker socket is missing.
func TestMackerelAgentOnceHealth(t *testing.T) {
	t.Run("over the tasks", func(t *testing.T) {
		needDocker(t)
		custom := agentOnce(t, "examples/mackerel-agent.conf", "--label", "com.amazonaws.ecs.cluster="+cluster)
		assertHealth(t, custom, "custom.", health{found: len(healthy) + len(broken), ok: len(healthy), failed: len(broken)},
			scrapeTimeout+runMargin)
		if k := "custom." + healthPrefix + "targets.failed"; custom[k] != float64(len(broken)) {
			t.Errorf("%s = %f, want %d", k, custom[k], len(broken))
		}
	})
	t.Run("Docker socket missing", func(t *testing.T) {
		// The last --docker-host given wins.
		custom := agentOnce(t, "examples/mackerel-agent.conf", "--docker-host", "unix:///nonexistent/docker.sock")
		if len(withoutHealth(custom)) != 0 {
			t.Errorf("task keys from a failed discovery: %v", custom)
		}
		assertHealth(t, custom, "custom.", health{discoveryErrors: 1}, 2*time.Second)
		if k := "custom." + healthPrefix + "discovery.errors"; custom[k] != 1 {
			t.Errorf("%s = %f, want 1", k, custom[k])
		}
	})
}
