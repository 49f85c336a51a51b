package main

// Integration tests: the built binary against ECS-like tasks on a real Docker
// Engine (see dockerenv_test.go), and under a real mackerel-agent.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	gaugeMetrics = []string{
		"runtime.goroutine_num",
		"memory.memory_alloc", "memory.memory_sys", "memory.memory_stack",
		"heap.heap_sys", "heap.heap_idle", "heap.heap_inuse", "heap.heap_released",
		"gc.gc_per_second", "gc.gc_pause_per_second",
		"objects.heap_objects",
	}
	diffMetrics = []string{
		"runtime.cgo_call_num",
		"operation.memory_lookups", "operation.memory_mallocs", "operation.memory_frees",
		"gc.gc_num",
		"allocation.memory_total_alloc",
	}
	keyRE = regexp.MustCompile(`^[-a-zA-Z0-9_.]+$`)
)

const (
	scrapeTimeout = 2 * time.Second
	// A run with hung targets must end within --timeout plus this margin.
	runMargin = 1500 * time.Millisecond
)

type result struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
}

// runPlugin runs the built plugin with args and extra environment entries.
func runPlugin(t *testing.T, env []string, args ...string) result {
	t.Helper()
	r, err := runProcess(30*time.Second, append(os.Environ(), env...), pluginBin, args...)
	if err != nil {
		t.Fatalf("running %s: %v", pluginBin, err)
	}
	if strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "goroutine ") {
		t.Errorf("stderr shows a crash:\n%s", r.stderr)
	}
	return r
}

// runProcess runs name with args and env, for at most timeout, and returns
// its output, wall time and exit code; the error is for a process that could
// not be run or did not exit by itself.
func runProcess(timeout time.Duration, env []string, name string, args ...string) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.Exited() {
		r.code, err = exit.ExitCode(), nil
	}
	return r, err
}

// clusterArgs are the options of a plugin run over this run's tasks.
func clusterArgs(tempfile string) []string {
	return []string{
		"--docker-host", dockerHost,
		"--label", "com.amazonaws.ecs.cluster=" + cluster,
		"--timeout", scrapeTimeout.String(),
		"--tempfile", tempfile,
	}
}

// parseMetrics checks that every stdout line is `key\tvalue\tepoch` with a
// valid key, a number and a current time, and returns the values by key.
func parseMetrics(t *testing.T, stdout string) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	now := time.Now().Unix()
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			t.Errorf("not key<TAB>value<TAB>epoch: %q", line)
			continue
		}
		if !keyRE.MatchString(f[0]) {
			t.Errorf("key %q does not match %s", f[0], keyRE)
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			t.Errorf("value of %s: %v", f[0], err)
		}
		epoch, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil || epoch < now-60 || epoch > now+1 {
			t.Errorf("epoch of %s is %q, want about %d", f[0], f[2], now)
		}
		if _, dup := m[f[0]]; dup {
			t.Errorf("key %s printed twice", f[0])
		}
		m[f[0]] = v
	}
	return m
}

func keysFor(ports []string, metrics ...[]string) []string {
	var keys []string
	for _, p := range ports {
		for _, ms := range metrics {
			for _, name := range ms {
				keys = append(keys, "gostats."+p+"."+name)
			}
		}
	}
	slices.Sort(keys)
	return keys
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func portsOf(tasks []task) []string {
	var ports []string
	for _, tk := range tasks {
		ports = append(ports, tk.port)
	}
	return ports
}

func assertKeys(t *testing.T, got map[string]float64, want []string) {
	t.Helper()
	if g := sortedKeys(withoutHealth(got)); !slices.Equal(g, want) { // health_test.go checks the rest
		t.Errorf("metric keys:\n got  %q\n want %q", g, want)
	}
}

// assertWarnings checks that stderr has exactly one scrape warning per broken
// task, naming its URL, container name and short id.
func assertWarnings(t *testing.T, stderr string, broken []task) {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(stderr, "\n") {
		if strings.Contains(l, "warning: scrape") {
			lines = append(lines, l)
		}
	}
	if len(lines) != len(broken) {
		t.Errorf("%d scrape warnings, want %d:\n%s", len(lines), len(broken), stderr)
	}
	for _, tk := range broken {
		prefix := fmt.Sprintf("warning: scrape http://127.0.0.1:%s/stats (container %s %s): ", tk.port, tk.name, tk.shortID())
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, prefix) {
				n++
				if tk.mode == "error" && !strings.Contains(l, "500") {
					t.Errorf("warning for the 500 task does not say 500: %q", l)
				}
			}
		}
		if n != 1 {
			t.Errorf("%d warnings starting %q, want 1; stderr:\n%s", n, prefix, stderr)
		}
	}
}

func assertPositive(t *testing.T, m map[string]float64, ports []string) {
	t.Helper()
	for k, v := range m {
		if v < 0 {
			t.Errorf("%s = %f, negative", k, v)
		}
	}
	for _, p := range ports {
		if k := "gostats." + p + ".memory.memory_sys"; m[k] <= 0 {
			t.Errorf("%s = %f, want > 0", k, m[k])
		}
	}
}

// TestScrapeRuns runs the plugin over healthy and broken tasks twice with
// one state file: gauges first, then diffs; then over tasks of its own, one
// of which it replaces on the same host port.
func TestScrapeRuns(t *testing.T) {
	needDocker(t)
	var lastRun time.Time
	run := func(t *testing.T, args []string, broken []task) map[string]float64 {
		t.Helper()
		// the state file helper ignores runs less than 1 s apart
		time.Sleep(time.Until(lastRun.Add(1100 * time.Millisecond)))
		r := runPlugin(t, nil, args...)
		lastRun = time.Now()
		t.Logf("run took %v", r.elapsed)
		if r.code != 0 {
			t.Fatalf("exit %d, want 0; stderr:\n%s", r.code, r.stderr)
		}
		if limit := scrapeTimeout + runMargin; r.elapsed >= limit {
			t.Errorf("run took %v, want < %v (hung targets must not hold the run)", r.elapsed, limit)
		}
		assertWarnings(t, r.stderr, broken)
		return parseMetrics(t, r.stdout)
	}

	shared := clusterArgs(filepath.Join(t.TempDir(), "state"))
	if !t.Run("first run: gauges only", func(t *testing.T) {
		m := run(t, shared, broken)
		assertKeys(t, m, keysFor(portsOf(healthy), gaugeMetrics))
		assertPositive(t, m, portsOf(healthy))
	}) {
		return
	}
	if !t.Run("second run: gauges and diffs", func(t *testing.T) {
		m := run(t, shared, broken)
		assertKeys(t, m, keysFor(portsOf(healthy), gaugeMetrics, diffMetrics))
		assertPositive(t, m, portsOf(healthy))
	}) {
		return
	}
	t.Run("task replaced on the same host port", func(t *testing.T) {
		// Two tasks in a cluster of this test's own: the shared ones stay.
		own := ownCluster(t, "replaced")
		var tasks []task
		for range 2 {
			tk, err := startTask(own, familyOwn, "ok", "8080")
			if err != nil {
				t.Fatal(err)
			}
			if err := waitAnswers(tk); err != nil {
				t.Fatal(err)
			}
			tasks = append(tasks, tk)
		}
		args := []string{
			"--docker-host", dockerHost,
			"--label", "com.amazonaws.ecs.cluster=" + own,
			"--timeout", scrapeTimeout.String(),
			"--tempfile", filepath.Join(t.TempDir(), "state"),
		}
		assertKeys(t, run(t, args, nil), keysFor(portsOf(tasks), gaugeMetrics))
		assertKeys(t, run(t, args, nil), keysFor(portsOf(tasks), gaugeMetrics, diffMetrics))

		old := tasks[0]
		if out, err := docker(context.Background(), "rm", "-f", old.id); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		// On loopback only: dockerd 20.10 may have given the old port's number
		// to another container's IPv6 binding, which -p PORT:8080 would take too.
		nt, err := startTask(own, familyOwn, "ok", "127.0.0.1:"+old.port+":8080")
		if err != nil {
			t.Fatal(err)
		}
		tasks[0] = nt
		if nt.port != old.port {
			t.Fatalf("new task on port %s, want %s", nt.port, old.port)
		}
		if err := waitAnswers(nt); err != nil {
			t.Fatal(err)
		}

		m := run(t, args, nil)
		want := append(keysFor(portsOf(tasks), gaugeMetrics), keysFor(portsOf(tasks[1:]), diffMetrics)...)
		slices.Sort(want)
		assertKeys(t, m, want) // the replaced port's counters start over: no diffs yet
		assertPositive(t, m, portsOf(tasks))

		m = run(t, args, nil)
		assertKeys(t, m, keysFor(portsOf(tasks), gaugeMetrics, diffMetrics))
		assertPositive(t, m, portsOf(tasks))
	})
}

func TestMetaMode(t *testing.T) {
	r := runPlugin(t, []string{"MACKEREL_AGENT_PLUGIN_META=1"}, "--no-health", // TestMetaCoversHealth: the default
		"--docker-host", dockerHost, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	head, body, _ := strings.Cut(r.stdout, "\n")
	if head != "# mackerel-agent-plugin" {
		t.Fatalf("first line %q, want %q", head, "# mackerel-agent-plugin")
	}
	var meta struct {
		Graphs map[string]struct {
			Label   string `json:"label"`
			Unit    string `json:"unit"`
			Metrics []struct {
				Name  string `json:"name"`
				Label string `json:"label"`
			} `json:"metrics"`
		} `json:"graphs"`
	}
	if err := json.Unmarshal([]byte(body), &meta); err != nil {
		t.Fatalf("meta JSON: %v\n%s", err, body)
	}
	var graphs, covered []string
	for key, g := range meta.Graphs {
		graphs = append(graphs, key)
		if !strings.HasPrefix(g.Label, "Gostats ") || strings.Contains(g.Label, "#") {
			t.Errorf("graph %s label %q, want \"Gostats <Name>\"", key, g.Label)
		}
		if g.Unit == "" {
			t.Errorf("graph %s has no unit", key)
		}
		for _, mt := range g.Metrics {
			covered = append(covered, strings.Replace(key, "#", "1234", 1)+"."+mt.Name)
		}
	}
	slices.Sort(graphs)
	wantGraphs := []string{"gostats.#.allocation", "gostats.#.gc", "gostats.#.heap", "gostats.#.memory",
		"gostats.#.objects", "gostats.#.operation", "gostats.#.runtime"}
	if !slices.Equal(graphs, wantGraphs) {
		t.Errorf("graphs %q, want %q", graphs, wantGraphs)
	}
	// every key the plugin emits is defined exactly once
	slices.Sort(covered)
	if want := keysFor([]string{"1234"}, gaugeMetrics, diffMetrics); !slices.Equal(covered, want) {
		t.Errorf("graph metrics cover\n %q\nwant\n %q", covered, want)
	}
}

func TestList(t *testing.T) {
	needDocker(t)
	r := runPlugin(t, nil, append(clusterArgs(filepath.Join(t.TempDir(), "state")), "--list")...)
	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != len(healthy)+len(broken) {
		t.Errorf("%d lines, want %d:\n%s", len(lines), len(healthy)+len(broken), r.stdout)
	}
	for _, tk := range append(append([]task{}, healthy...), broken...) {
		var f []string
		for _, l := range lines {
			if g := strings.Fields(l); len(g) > 0 && g[0] == tk.name {
				f = g
			}
		}
		if len(f) < 6 {
			t.Errorf("no line for %s:\n%s", tk.name, r.stdout)
			continue
		}
		// name, short id, family, address, key (the host port by default),
		// status, then how it was read: the default format at its default path
		if want := []string{tk.name, tk.shortID(), tk.family, "127.0.0.1:" + tk.port, tk.port}; !slices.Equal(f[:5], want) {
			t.Errorf("line for %s starts %q, want %q", tk.name, f[:5], want)
		}
		read := []string{"gostats", "(default)", "at", "/stats", "(default)"}
		if len(f) < 5+len(read) || !slices.Equal(f[len(f)-len(read):], read) {
			t.Errorf("line for %s: %q, want it to end %q", tk.name, f, read)
			continue
		}
		f = f[:len(f)-len(read)]
		if tk.mode == "ok" {
			if _, err := time.ParseDuration(strings.Join(f[6:], "")); f[5] != "ok" || len(f) != 7 || err != nil {
				t.Errorf("healthy %s: %q, want `ok <latency>`", tk.name, f[5:])
			}
		} else if f[5] != "error:" || len(f) < 7 {
			t.Errorf("broken %s (%s): %q, want `error: <cause>`", tk.name, tk.mode, f[5:])
		}
	}
}

func TestFilters(t *testing.T) {
	needDocker(t)
	web := healthyOf(familyWeb)
	tests := []struct {
		name string
		args []string
		want []task
	}{
		{"name selects one task", []string{"--name", healthy[1].name}, healthy[1:2]},
		{"family web", []string{"--label", "com.amazonaws.ecs.task-definition-family=" + familyWeb}, web},
		{"family api", []string{"--label", "com.amazonaws.ecs.task-definition-family=" + familyAPI}, []task{healthy[2]}},
		{"name and cluster label", []string{"--name", healthy[2].name, "--label", "com.amazonaws.ecs.cluster=" + cluster}, healthy[2:3]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--docker-host", dockerHost, "--timeout", "2s",
				"--tempfile", filepath.Join(t.TempDir(), "state")}, tt.args...)
			r := runPlugin(t, nil, args...)
			if r.code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			assertKeys(t, parseMetrics(t, r.stdout), keysFor(portsOf(tt.want), gaugeMetrics))
			assertWarnings(t, r.stderr, nil)
		})
	}
}

func TestDaemonUnreachable(t *testing.T) {
	const addr = "unix:///nonexistent/docker.sock"
	r := runPlugin(t, nil, "--docker-host", addr, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	assertOnlyHealth(t, r.stdout, health{discoveryErrors: 1}, 2*time.Second)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "/nonexistent/docker.sock") {
		t.Errorf("stderr %q, want one line naming %s", r.stderr, addr)
	}
}

func TestVersion(t *testing.T) {
	r := runPlugin(t, nil, "--version")
	if r.code != 0 || r.stdout != "mackerel-plugin-ecs-gostats itest\n" {
		t.Errorf("--version: exit %d, stdout %q", r.code, r.stdout)
	}
}

// TestMackerelAgentOnce runs the plugin as a metrics plugin of a real
// mackerel-agent, configured with examples/mackerel-agent.conf.
func TestMackerelAgentOnce(t *testing.T) {
	needDocker(t)
	custom := agentOnce(t, "examples/mackerel-agent.conf", "--label", "com.amazonaws.ecs.cluster="+cluster)
	var want []string
	for _, k := range keysFor(portsOf(healthy), gaugeMetrics) {
		want = append(want, "custom."+k)
	}
	assertKeys(t, custom, want)
	for _, tk := range healthy {
		if k := "custom.gostats." + tk.port + ".memory.memory_sys"; custom[k] <= 0 {
			t.Errorf("%s = %f, want > 0", k, custom[k])
		}
	}
}

// agentOnce runs a real mackerel-agent's `once` (it prints what it would
// post and posts nothing) with the plugin block of the example conf file as
// users paste it, the installed path replaced by this build and args added,
// and returns the custom.* values it would post.
func agentOnce(t *testing.T, example string, args ...string) map[string]float64 {
	t.Helper()
	return agentOnceWith(t, agentRun{example: example, args: args})
}

// agentRun is a run of agentOnceWith.
type agentRun struct {
	example string
	env     []string          // added to the agent's environment, which its plugins inherit
	set     map[string]string // options of the example's command given another value, e.g. the endpoint
	args    []string          // added to the example's command
}

// agentOnceWith is agentOnce with the agent's environment and the example's
// options changed as run says.
func agentOnceWith(t *testing.T, run agentRun) map[string]float64 {
	t.Helper()
	example := run.example
	agent := toolBin(t, "MACKEREL_AGENT_BIN", "mackerel-agent")
	dir := t.TempDir()
	plugins := loadAgentConf(t, example)
	p, ok := plugins["ecs-gostats"]
	if !ok || len(p.Command) == 0 || p.Command[0] != pluginCommand {
		t.Fatalf("%s has no [plugin.metrics.ecs-gostats] block running %s", example, pluginCommand)
	}
	command := append([]string{pluginBin}, p.Command[1:]...)
	for opt, v := range run.set {
		i := slices.Index(command, opt)
		if i < 0 || i+1 >= len(command) {
			t.Fatalf("%s: the command %q has no %s VALUE to set", example, p.Command, opt)
		}
		command[i+1] = v
	}
	command = append(command, "--docker-host", dockerHost, "--timeout", scrapeTimeout.String(),
		"--tempfile", filepath.Join(dir, "state"))
	command = append(command, run.args...)
	quoted, _ := json.Marshal(command) // a JSON array of plain strings is a TOML array
	conf := fmt.Sprintf(`apikey = "dummy"
apibase = "http://127.0.0.1:9"
pidfile = %q
root = %q
cloud_platform = "none"

[plugin.metrics.ecs-gostats]
command = %s
`, filepath.Join(dir, "pid"), dir, quoted)
	if len(p.Env) > 0 { // the example's env, as the agent gives it to the plugin
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(p.Env)) {
			kv = append(kv, fmt.Sprintf("%q = %q", k, p.Env[k]))
		}
		conf += "env = { " + strings.Join(kv, ", ") + " }\n"
	}
	confFile := filepath.Join(dir, "mackerel-agent.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}

	var r result
	for attempt := 1; ; attempt++ {
		os.Remove(filepath.Join(dir, "state"))
		var err error
		r, err = runProcess(60*time.Second, append(os.Environ(), run.env...), agent, "once", "-conf", confFile)
		if err == nil && r.code != 0 {
			err = fmt.Errorf("exit status %d", r.code)
		}
		// The agent lists the host's network interfaces first, with one netlink
		// dump, which the kernel interrupts when interfaces come or go meanwhile:
		// containers started or removed on this machine by anyone.
		if err != nil && attempt < 3 && strings.Contains(r.stderr, "failed to collect interfaces: results may be incomplete or inconsistent") {
			t.Logf("mackerel-agent once, attempt %d: interfaces changed while it listed them; again", attempt)
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("mackerel-agent once: %v\nstderr:\n%s", err, r.stderr)
		}
		t.Logf("mackerel-agent once took %v", r.elapsed)
		break
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mackerel-agent stderr:\n%s", r.stderr)
		}
	})
	return agentCustomValues(t, []byte(r.stdout))
}

// agentCustomValues are the custom.* values in what `mackerel-agent once`
// printed: one JSON document, {"host": {...}, "metrics": {"Values":
// [{"Values": {key: {"Value": v}}}]}}.
func agentCustomValues(t *testing.T, stdout []byte) map[string]float64 {
	t.Helper()
	var out struct {
		Metrics struct {
			Values []struct {
				Values map[string]struct{ Value float64 }
			}
		} `json:"metrics"`
	}
	if err := json.Unmarshal(stdout, &out); err != nil {
		t.Fatalf("mackerel-agent output: %v\n%s", err, stdout)
	}
	custom := map[string]float64{}
	for _, vs := range out.Metrics.Values {
		for k, v := range vs.Values {
			if strings.HasPrefix(k, "custom.") {
				custom[k] = v.Value
			}
		}
	}
	return custom
}

// TestDaemonPermissionDenied runs the plugin as an unprivileged user (not in
// the docker group) against the real daemon's socket.
func TestDaemonPermissionDenied(t *testing.T) {
	needDocker(t)
	skip := func(why string) { skipUnlessCI(t, why) }
	sock, ok := strings.CutPrefix(dockerHost, "unix://")
	if !ok {
		skip("the daemon is not on a unix socket")
	}
	if os.Getuid() != 0 {
		skip("needs root to run the plugin as another user")
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm()&0o006 != 0 {
		skip(fmt.Sprintf("socket %s is open to everyone (%v)", sock, err))
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		skip("setpriv (util-linux) not found")
	}
	// A copy of the binary the unprivileged user can execute.
	dir, err := os.MkdirTemp("", "ecs-gostats-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "mackerel-plugin-ecs-gostats")
	b, err := os.ReadFile(pluginBin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)

	cmd := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", bin,
		"--docker-host", dockerHost, "--tempfile", filepath.Join(dir, "state"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("err %v, want exit 1; stderr %q", err, stderr.String())
	}
	want := "mackerel-plugin-ecs-gostats: cannot list containers at " + dockerHost +
		": permission denied: run as root or as a user in the docker group\n"
	if stderr.String() != want {
		t.Errorf("stderr %q\nwant stderr %q", stderr.String(), want)
	}
	assertOnlyHealth(t, stdout.String(), health{discoveryErrors: 1}, 2*time.Second)
}

// TestConcurrentRuns: two runs at the same moment on the same state file both
// print every healthy task's gauges, and neither prints a negative rate.
func TestConcurrentRuns(t *testing.T) {
	needDocker(t)
	state := filepath.Join(t.TempDir(), "state")
	var wg sync.WaitGroup
	results := make([]result, 2)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = runPlugin(t, nil, clusterArgs(state)...)
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r.code != 0 {
			t.Errorf("exit %d; stderr:\n%s", r.code, r.stderr)
		}
		metrics := parseMetrics(t, r.stdout)
		for _, port := range portsOf(healthy) {
			if _, ok := metrics["gostats."+port+".memory.memory_sys"]; !ok {
				t.Errorf("port %s: no memory_sys in\n%s", port, r.stdout)
			}
		}
		for k, v := range metrics {
			if v < 0 {
				t.Errorf("%s = %v", k, v)
			}
		}
	}
	// the state file is one run's whole: every healthy task's record, read
	// by the next run without a warning
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var saved struct {
		Version int
		Tasks   map[string]struct{ Target string }
	}
	if err := json.Unmarshal(b, &saved); err != nil || saved.Version != 1 {
		t.Fatalf("state file after two concurrent runs: version %d, %v:\n%s", saved.Version, err, b)
	}
	for _, port := range portsOf(healthy) {
		if saved.Tasks[port].Target == "" {
			t.Errorf("state file has no task %s:\n%s", port, b)
		}
	}
	if r := runPlugin(t, nil, clusterArgs(state)...); r.code != 0 || strings.Contains(r.stderr, "state file") {
		t.Errorf("the run after: exit %d, stderr:\n%s", r.code, r.stderr)
	}
}

// TestKeysMatchShellLoop runs the shell loop's plugin (mackerel-plugin-gostats
// v0.91.0, as `-port P -path=/stats -metric-key-prefix=gostats.P`) and ours on
// the same task, twice each: every key the loop prints, ours prints too,
// byte for byte; ours adds only its two new series.
func TestKeysMatchShellLoop(t *testing.T) {
	needDocker(t)
	gostats := toolBin(t, "GOSTATS_BIN", "mackerel-plugin-gostats")
	tk := healthy[0]
	dir := t.TempDir()
	loop := func() map[string]float64 {
		out, err := exec.Command(gostats, "-port", tk.port, "-path=/stats", "-metric-key-prefix=gostats."+tk.port,
			"-tempfile", filepath.Join(dir, "loop-state")).Output()
		if err != nil {
			t.Fatalf("mackerel-plugin-gostats: %v", err)
		}
		return parseMetrics(t, string(out))
	}
	ours := func() map[string]float64 {
		r := runPlugin(t, nil, "--docker-host", dockerHost, "--name", tk.name, "--tempfile", filepath.Join(dir, "state"))
		return withoutHealth(parseMetrics(t, r.stdout))
	}
	loop()
	ours()
	time.Sleep(1100 * time.Millisecond) // both helpers skip a state younger than a second
	loopKeys, ourKeys := sortedKeys(loop()), ours()
	var added []string
	for k := range ourKeys {
		// The loop diffs heap_released and skips it when it went down.
		if !slices.Contains(loopKeys, k) && k != "gostats."+tk.port+".heap.heap_released" {
			added = append(added, k)
		}
	}
	slices.Sort(added)
	for _, k := range loopKeys {
		if _, ok := ourKeys[k]; !ok {
			t.Errorf("the loop prints %s, the plugin does not", k)
		}
	}
	if want := keysFor([]string{tk.port}, []string{"allocation.memory_total_alloc", "objects.heap_objects"}); !slices.Equal(added, want) {
		t.Errorf("keys only the plugin prints: %q, want %q", added, want)
	}
	if len(loopKeys) < 14 {
		t.Errorf("the loop printed %d keys, want its 15 (14 when heap_released went down): %q", len(loopKeys), loopKeys)
	}
}
