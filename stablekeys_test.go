package main

// Integration tests of --key, --graphs and --address container-ip on the real
// Docker Engine, with the built binary.

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// startOwnTask starts a healthy task in cluster c and waits until it answers.
func startOwnTask(t *testing.T, c, family string) task {
	t.Helper()
	tk, err := startTask(c, family, "ok", "8080")
	if err != nil {
		t.Fatal(err)
	}
	if err := waitAnswers(tk); err != nil {
		t.Fatal(err)
	}
	return tk
}

// keyRun is one run of the plugin over cluster c with a state file in dir,
// at least a second after the last (rates need whole seconds between runs).
type keyRun struct {
	t       *testing.T
	c, dir  string
	args    []string
	lastRun time.Time
}

func (k *keyRun) run() (map[string]float64, result) {
	k.t.Helper()
	time.Sleep(time.Until(k.lastRun.Add(1100 * time.Millisecond)))
	r := runPlugin(k.t, nil, append([]string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + k.c,
		"--timeout", scrapeTimeout.String(), "--tempfile", filepath.Join(k.dir, "state")}, k.args...)...)
	k.lastRun = time.Now()
	if r.code != 0 {
		k.t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	m := parseMetrics(k.t, r.stdout)
	for key, v := range m {
		if v < 0 {
			k.t.Errorf("%s = %f, negative", key, v)
		}
	}
	return m, r
}

// keysOf is the task keys (second segment) of the gostats.* keys printed,
// with how many metrics each has.
func keysOf(m map[string]float64) map[string]int {
	keys := map[string]int{}
	for k := range m {
		if f := strings.Split(k, "."); f[0] == "gostats" {
			keys[f[1]]++
		}
	}
	return keys
}

func TestSlotsOnARealEngine(t *testing.T) {
	needDocker(t)
	c := ownCluster(t, "slots")
	family := "itest" + runID + "-slots"
	var tasks []task
	for range 3 {
		tasks = append(tasks, startOwnTask(t, c, family))
		time.Sleep(1100 * time.Millisecond) // one creation second each: the slot order is the start order
	}
	k := &keyRun{t: t, c: c, dir: t.TempDir(), args: []string{"--key", "{family}-{slot}"}}
	gauges, all := len(gaugeMetrics), len(gaugeMetrics)+len(diffMetrics)
	key := func(n int) string { return fmt.Sprintf("%s-%d", family, n) }
	want := func(counts ...int) map[string]int {
		m := map[string]int{}
		for i, n := range counts {
			if n > 0 {
				m[key(i+1)] = n
			}
		}
		return m
	}
	check := func(step string, m map[string]float64, w map[string]int) {
		t.Helper()
		if got := keysOf(m); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Fatalf("%s: task keys with their metric counts %v, want %v", step, got, w)
		}
	}

	m, _ := k.run()
	check("first run", m, want(gauges, gauges, gauges))
	m, _ = k.run()
	check("second run", m, want(all, all, all))

	// Replace the second task: its slot is reused, and has no rates once.
	if out, err := docker(t.Context(), "rm", "-f", tasks[1].id); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	tasks[1] = startOwnTask(t, c, family)
	m, _ = k.run()
	check("after a replacement", m, want(all, gauges, all))
	m, _ = k.run()
	check("the run after", m, want(all, all, all))

	tasks = append(tasks, startOwnTask(t, c, family))
	m, _ = k.run()
	check("a fourth task", m, want(all, all, all, gauges))

	// A corrupt state: one run without rates, the slots numbered again.
	if err := os.WriteFile(filepath.Join(k.dir, "state"), []byte(`{"version":1,"tas`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, r := k.run()
	check("after the state was corrupted", m, want(gauges, gauges, gauges, gauges))
	wantWarning := "warning: state file " + filepath.Join(k.dir, "state") + " ignored, rates start again: unexpected end of JSON input"
	if strings.TrimSpace(r.stderr) != wantWarning {
		t.Errorf("stderr %q\nwant %q", r.stderr, wantWarning)
	}
	m, _ = k.run()
	check("and the run after", m, want(all, all, all, all))
}

// TestKeyWarningsOnARealEngine: the exact lines for keys that collide or
// lack a value, and for bad --key and --graphs values.
func TestKeyWarningsOnARealEngine(t *testing.T) {
	needDocker(t)
	c := ownCluster(t, "warn")
	family := "itest" + runID + "-warn"
	first := startOwnTask(t, c, family)
	time.Sleep(1100 * time.Millisecond)
	second := startOwnTask(t, c, family)
	// A container ECS did not start: no task-definition labels.
	plainName := "itest" + runID + "-plain"
	if out, err := docker(t.Context(), "run", "-d", "--name", plainName, "-p", "8080",
		"-l", "com.amazonaws.ecs.cluster="+c, image); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	plainID, err := docker(t.Context(), "inspect", "-f", "{{.Id}}", plainName)
	if err != nil {
		t.Fatal(err)
	}

	k := &keyRun{t: t, c: c, dir: t.TempDir(), args: []string{"--key", "{family}"}}
	_, r := k.run()
	want := []string{
		fmt.Sprintf(`warning: container %s %s (port 8080) skipped: --key "{family}" uses {family}, but it has no label com.amazonaws.ecs.task-definition-family; use a --key without it, or filter the container out`, plainName, strings.TrimSpace(plainID)[:12]),
		fmt.Sprintf(`warning: container %s %s (port 8080) skipped: key %q is taken by container %s %s (port 8080); add {slot} to --key to number them`, second.name, second.shortID(), family, first.name, first.shortID()),
	}
	got := strings.Split(strings.TrimSpace(r.stderr), "\n")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, tt := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--key", "{family}.{slot}"}, `mackerel-plugin-ecs-gostats: --key "{family}.{slot}": '.' would split the metric key; use '-' or '_'` + "\n"},
		{[]string{"--key", "web"}, `mackerel-plugin-ecs-gostats: --key "web": no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'` + "\n"},
		{[]string{"--graphs", "memory,threads"}, `mackerel-plugin-ecs-gostats: --graphs "memory,threads": unknown graph "threads" (valid: runtime,memory,operation,heap,gc,objects,allocation)` + "\n"},
	} {
		r := runPlugin(t, nil, append([]string{"--docker-host", dockerHost}, tt.args...)...)
		if r.code != 2 || r.stdout != "" || r.stderr != tt.stderr {
			t.Errorf("%q: exit %d, stdout %q, stderr %q\nwant exit 2 and %q", tt.args, r.code, r.stdout, r.stderr, tt.stderr)
		}
	}
}

// TestGraphsOnARealEngine: --graphs narrows the values and the meta alike.
func TestGraphsOnARealEngine(t *testing.T) {
	needDocker(t)
	r := runPlugin(t, nil, append(clusterArgs(filepath.Join(t.TempDir(), "state")), "--graphs", "memory,gc")...)
	m := parseMetrics(t, r.stdout)
	var want []string
	for _, name := range gaugeMetrics {
		if g := strings.Split(name, ".")[0]; g == "memory" || g == "gc" {
			want = append(want, name)
		}
	}
	assertKeys(t, m, keysFor(portsOf(healthy), want))

	meta := runPlugin(t, []string{"MACKEREL_AGENT_PLUGIN_META=1"}, "--graphs", "memory,gc")
	if !strings.Contains(meta.stdout, `"gostats.#.memory"`) || !strings.Contains(meta.stdout, `"gostats.#.gc"`) ||
		strings.Count(meta.stdout, `"gostats.#.`) != 2 {
		t.Errorf("meta with --graphs memory,gc:\n%s", meta.stdout)
	}
}

// proxyRecorder is an HTTP proxy that answers nothing and counts requests:
// targets must never be reached through one.
func proxyRecorder(t *testing.T) (url string, requests *atomic.Int64) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	requests = new(atomic.Int64)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		http.Error(w, "proxy", http.StatusBadGateway)
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String(), requests
}

// TestContainerIP: --address container-ip reaches every web task at its
// container address, from the host and from inside a container with the
// Docker socket mounted, under the same keys; never through HTTP_PROXY.
func TestContainerIP(t *testing.T) {
	needDocker(t)
	web := healthyOf(familyWeb)
	args := []string{"--label", "com.amazonaws.ecs.task-definition-family=" + familyWeb,
		"--address", "container-ip", "--key", "{family}-{slot}", "--timeout", scrapeTimeout.String()}
	wantKeys := map[string]int{}
	for i := range web {
		wantKeys[fmt.Sprintf("%s-%d", familyWeb, i+1)] = len(gaugeMetrics)
	}

	t.Run("from the host", func(t *testing.T) {
		proxy, requests := proxyRecorder(t)
		r := runPlugin(t, []string{"HTTP_PROXY=" + proxy, "http_proxy=" + proxy},
			append([]string{"--docker-host", dockerHost, "--tempfile", filepath.Join(t.TempDir(), "state")}, args...)...)
		if got := keysOf(parseMetrics(t, r.stdout)); r.code != 0 || fmt.Sprint(got) != fmt.Sprint(wantKeys) {
			t.Errorf("exit %d, keys %v, want %v; stderr:\n%s", r.code, got, wantKeys, r.stderr)
		}
		if n := requests.Load(); n != 0 {
			t.Errorf("%d requests went through HTTP_PROXY", n)
		}
	})

	t.Run("from inside a container", func(t *testing.T) {
		sock, ok := strings.CutPrefix(dockerHost, "unix://")
		if !ok {
			t.Fatalf("the daemon is at %s, not on a unix socket to mount", dockerHost)
		}
		pluginImage := pluginImage(t)
		out, err := docker(t.Context(), append([]string{"run", "--rm",
			"-v", sock + ":/var/run/docker.sock:ro", pluginImage}, args...)...)
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		if got := keysOf(parseMetrics(t, out)); fmt.Sprint(got) != fmt.Sprint(wantKeys) {
			t.Errorf("keys %v, want %v; output:\n%s", got, wantKeys, out)
		}
	})
}

// TestMackerelAgentOnceStableKeys: mackerel-agent with
// examples/mackerel-agent.stable.conf posts the web tasks as
// custom.gostats.<family>-<slot>.*, only the graphs the example names.
func TestMackerelAgentOnceStableKeys(t *testing.T) {
	needDocker(t)
	custom := agentOnce(t, "examples/mackerel-agent.stable.conf",
		"--label", "com.amazonaws.ecs.task-definition-family="+familyWeb)
	var want []string
	for _, slot := range []string{"1", "2"} {
		for _, m := range gaugeMetrics {
			if g := strings.Split(m, ".")[0]; g == "runtime" || g == "memory" || g == "heap" || g == "gc" {
				want = append(want, "custom.gostats."+familyWeb+"-"+slot+"."+m)
			}
		}
	}
	slices.Sort(want)
	assertKeys(t, custom, want)
	if k := "custom.gostats." + familyWeb + "-1.memory.memory_sys"; custom[k] <= 0 {
		t.Errorf("%s = %f, want > 0", k, custom[k])
	}
}
