package main

// Integration test of one plugin block over a mixed fleet: Go services of
// every kind the plugin reads, services it must leave alone, and a
// Fargate-like task, on the real Docker Engine, read with --format auto and
// the per-container labels (see docs/labels.md).

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// statsListener is one listening socket of a statsapp, as the test reaches
// it; statsapp counts the requests each listener serves, by path, and
// answers the counts at GET /statsapp/requests (uncounted).
type statsListener struct {
	name string // the task's role, and the container port when it has two
	base string // http://<address>:<port>
}

// requestCounter reads the statsapps' own request counts.
type requestCounter struct {
	listeners []statsListener
	last      map[string]map[string]int
}

// take returns the requests each listener served since the last take (by
// listener name, then path). statsapp counts a request before it answers
// it, so when the plugin has exited every request it made is counted.
func (c *requestCounter) take(t *testing.T) map[string]map[string]int {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	now := map[string]map[string]int{}
	since := map[string]map[string]int{}
	for _, l := range c.listeners {
		resp, err := client.Get(l.base + "/statsapp/requests")
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		var n map[string]int
		if err == nil {
			err = json.Unmarshal(b, &n)
		}
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s/statsapp/requests: %s %v: %q", l.base, resp.Status, err, b)
		}
		now[l.name] = n
		d := map[string]int{}
		for path, v := range n {
			if v -= c.last[l.name][path]; v != 0 {
				d[path] = v
			}
		}
		since[l.name] = d
	}
	c.last = now
	return since
}

// assertRequests checks the requests of one run, listener by listener: a
// listener missing from want served none.
func assertRequests(t *testing.T, got, want map[string]map[string]int) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if !maps.Equal(got[name], want[name]) {
			t.Errorf("%s served %v, want %v", name, got[name], want[name])
		}
	}
}

// publishedPort is the IPv4 host port a container publishes port (such as
// "9090/tcp") on.
func publishedPort(t *testing.T, id, port string) string {
	t.Helper()
	out, err := docker(t.Context(), "port", id, port)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, l := range strings.Fields(out) { // "0.0.0.0:32768", "[::]:32768"
		if host, p, ok := strings.Cut(l, ":"); ok && !strings.HasPrefix(host, "[") {
			return p
		}
	}
	t.Fatalf("container %s publishes %s on no IPv4 address: %q", id[:12], port, out)
	return ""
}

// taskKeys are the task parts of the metric keys of m (gostats.<key>.*, or
// custom.gostats.<key>.* as mackerel-agent posts them).
func taskKeys(m map[string]float64) []string {
	keys := map[string]bool{}
	for k := range withoutHealth(m) {
		keys[strings.Split(strings.TrimPrefix(k, "custom."), ".")[1]] = true
	}
	return slices.Sorted(maps.Keys(keys))
}

// assertGoTasks checks that m has values for exactly the task keys want,
// a memory.memory_sys above 0 for each (prefix: "" as printed, "custom."
// as mackerel-agent posts).
func assertGoTasks(t *testing.T, m map[string]float64, prefix string, want []string) {
	t.Helper()
	if got, want := taskKeys(m), slices.Sorted(slices.Values(want)); !slices.Equal(got, want) {
		t.Errorf("values for tasks %q, want %q", got, want)
	}
	for _, key := range want {
		if k := prefix + "gostats." + key + ".memory.memory_sys"; m[k] <= 0 {
			t.Errorf("%s = %f, want > 0", k, m[k])
		}
	}
}

// listLines are --list's lines by their first field, the container name,
// with the fields after it; a container with two lines gets the last.
func listLines(stdout string) map[string][]string {
	lines := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if f := strings.Fields(l); len(f) > 0 {
			lines[f[0]] = f[1:]
		}
	}
	return lines
}

// assertList checks --list's line of each container in want: the address
// it was read at (fourth field; "-" for a container passed over) and how the
// line ends.
func assertList(t *testing.T, stdout string, want map[string][2]string) {
	t.Helper()
	lines := listLines(stdout)
	if len(lines) != len(want) {
		t.Errorf("--list has %d containers, want %d:\n%s", len(lines), len(want), stdout)
	}
	for name, w := range want {
		f, ok := lines[name]
		if !ok || len(f) < 3 || f[2] != w[0] || !strings.HasSuffix(strings.Join(f, " "), w[1]) {
			t.Errorf("--list line of %s: %q, want address %s and ending %q", name, f, w[0], w[1])
		}
	}
}

// TestMixedFleet: one plugin block, --format auto and nothing else about
// formats, over one mixed fleet of bridge tasks as the ECS agent labels
// them: a golang-stats-api-handler service, an expvar-only one, a
// client_golang one, one serving its stats on a second port named by its
// gostats.port label (its first port is no stats endpoint), one with the
// CloudWatch agent's labels, one opted out with gostats.scrape=false, and a
// service that is no Go runtime (HTML at /stats); and a Fargate-like task,
// read with --source task-metadata beside it, whose worker container lists
// no port but has a gostats.port label. From the second run on every Go
// target costs exactly one request, counted by the services themselves, and
// no other container is asked anything. The same under mackerel-agent once;
// and with the default --format gostats, the labelled containers are still
// read as their labels say.
func TestMixedFleet(t *testing.T) {
	needDocker(t)
	own := ownCluster(t, "mixed")
	start := func(role, mode string, args ...string) task {
		return mustRunTask(t, own, role, append([]string{"--container-name", role, "--mode", mode}, args...)...)
	}
	handler := start("handler", "ok")
	expvarOnly := start("expvar", "expvar")
	prom := start("prometheus", "prometheus")
	second := start("second-port", "ok", "--env", "STATSAPP_STATS_ADDR=:9090", "--", "-p", "9090", "--label", "gostats.port=9090")
	cloudwatch := start("cloudwatch", "prometheus", "--", "--label", "ECS_PROMETHEUS_EXPORTER_PORT=8080")
	optedOut := start("opted-out", "ok", "--", "--label", "gostats.scrape=false")
	notGo := start("not-go", "badjson")
	secondStats := publishedPort(t, second.id, "9090/tcp")

	base := func(port string) string { return "http://127.0.0.1:" + port }
	for _, u := range []string{
		base(handler.port) + "/stats", base(expvarOnly.port) + "/debug/vars", base(prom.port) + "/metrics",
		base(second.port) + "/", base(secondStats) + "/stats", base(cloudwatch.port) + "/metrics",
		base(optedOut.port) + "/stats", base(notGo.port) + "/",
	} {
		if err := waitURL(u); err != nil {
			t.Fatal(err)
		}
	}
	bridge := &requestCounter{listeners: []statsListener{
		{"handler", base(handler.port)}, {"expvar", base(expvarOnly.port)}, {"prometheus", base(prom.port)},
		{"second-port:8080", base(second.port)}, {"second-port:9090", base(secondStats)},
		{"cloudwatch", base(cloudwatch.port)}, {"opted-out", base(optedOut.port)}, {"not-go", base(notGo.port)},
	}}
	// The Go tasks' keys: the host port of their stats port.
	goKeys := []string{handler.port, expvarOnly.port, prom.port, secondStats, cloudwatch.port}

	// The Fargate-like task, in a cluster of its own (Fargate tasks are on no
	// instance's Docker): a pause container holding the network namespace on
	// the test's network, web (the handler, on 8080, in its portMappings)
	// and worker api (expvar only, on 9090, no portMappings: its gostats.port
	// label names the port). The task metadata is the recorded Fargate
	// answer (task of family shop, its containers web, api, statsd on UDP
	// only, migrate stopped, mackerel-container-agent without ports) with
	// only this changed: api lists no port and has the label.
	taskCluster := ownCluster(t, "mixed-task")
	network, gateway := ownNetwork(t, taskCluster)
	image := pluginImage(t)
	const taskID = "4a5b6c7d8e9f40a1b2c3d4e5f6a7b8c9"
	pause := mustRunTask(t, taskCluster, "shop", "--container-name", "~internal~ecs~pause", "--task-id", taskID,
		"--publish", "none", "--", "--network", network, "--entrypoint", "/pause").id
	mustRunTask(t, taskCluster, "shop", "--container-name", "web", "--task-id", taskID,
		"--publish", "none", "--env", "STATSAPP_ADDR=:8080", "--", "--network", "container:"+pause)
	mustRunTask(t, taskCluster, "shop", "--container-name", "api", "--task-id", taskID, "--mode", "expvar",
		"--publish", "none", "--env", "STATSAPP_ADDR=:9090", "--", "--network", "container:"+pause, "--label", "gostats.port=9090")
	ip := containerAddress(t, pause, network)
	for _, u := range []string{"http://" + ip + ":8080/stats", "http://" + ip + ":9090/debug/vars"} {
		if err := waitURL(u); err != nil {
			t.Fatal(err)
		}
	}
	inTaskCounter := &requestCounter{listeners: []statsListener{{"task web", "http://" + ip + ":8080"}, {"task api", "http://" + ip + ":9090"}}}
	md, err := standin.NewTaskMetadata(gateway+":0", workerWithLabel(t))
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	// In the task, the command of examples/mackerel-container-agent.yml's
	// block (--source task-metadata) with --format auto.
	taskCommand := append(containerAgentCommand(t, "/mackerel-plugin-ecs-gostats"), "--format", "auto")
	stateDir := t.TempDir()
	// The plugin in the task, with its state file kept between runs.
	inTaskRun := func(t *testing.T, args ...string) result {
		t.Helper()
		run := []string{"run", "--rm", "--label", "com.amazonaws.ecs.cluster=" + taskCluster, "--network", "container:" + pause,
			"--user", fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid()), "-v", stateDir + ":/state",
			"-e", "ECS_CONTAINER_METADATA_URI_V4=" + md.URL, "--entrypoint", taskCommand[0], image}
		run = append(append(run, taskCommand[1:]...), "--timeout", scrapeTimeout.String(), "--tempfile", "/state/state")
		r, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost), "docker", append(run, args...)...)
		if err == nil && r.code >= 125 {
			err = fmt.Errorf("exit status %d: %s", r.code, r.stderr)
		}
		if err != nil {
			t.Fatalf("docker %s: %v", strings.Join(run, " "), err)
		}
		return r
	}

	auto := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + own,
		"--format", "auto", "--timeout", scrapeTimeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state")}
	identified := map[string]map[string]int{ // each Go target, once, where it was found
		"handler": {"/stats": 1}, "expvar": {"/debug/vars": 1}, "prometheus": {"/metrics": 1},
		"second-port:9090": {"/stats": 1}, "cloudwatch": {"/metrics": 1},
	}
	taskIdentified := map[string]map[string]int{"task web": {"/stats": 1}, "task api": {"/debug/vars": 1}}
	var lastRun time.Time
	for run := 1; run <= 3; run++ {
		if !t.Run(fmt.Sprintf("--format auto, run %d", run), func(t *testing.T) {
			time.Sleep(time.Until(lastRun.Add(1100 * time.Millisecond))) // rates need runs a second apart
			bridge.take(t)
			r := runPlugin(t, nil, auto...)
			lastRun = time.Now()
			got := bridge.take(t)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			m := parseMetrics(t, r.stdout)
			assertGoTasks(t, m, "", goKeys)
			// The opted-out container, the second port's 8080 and the
			// service that is no Go runtime are neither found nor failed.
			assertHealth(t, m, "", health{found: 5, ok: 5}, scrapeTimeout+runMargin)
			want := identified
			if run == 1 { // the probes: /stats, /metrics, /debug/vars until one answers with a known format
				want = map[string]map[string]int{
					"handler": {"/stats": 1}, "expvar": {"/stats": 1, "/metrics": 1, "/debug/vars": 1},
					"prometheus": {"/stats": 1, "/metrics": 1}, "second-port:9090": {"/stats": 1},
					"cloudwatch": {"/metrics": 1}, // its labels give format and path: no probe
					"not-go":     {"/stats": 1, "/metrics": 1, "/debug/vars": 1},
				}
			}
			assertRequests(t, got, want)

			inTaskCounter.take(t)
			r = inTaskRun(t)
			got = inTaskCounter.take(t)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("in the task: exit %d, stderr:\n%s", r.code, r.stderr)
			}
			m = parseMetrics(t, r.stdout)
			assertGoTasks(t, m, "", []string{"web", "api"})
			assertHealth(t, m, "", health{found: 2, ok: 2}, scrapeTimeout+runMargin)
			want = taskIdentified
			if run == 1 {
				want = map[string]map[string]int{"task web": {"/stats": 1}, "task api": {"/stats": 1, "/metrics": 1, "/debug/vars": 1}}
			}
			assertRequests(t, got, want)
		}) {
			return
		}
	}

	t.Run("--list shows how each was read", func(t *testing.T) {
		bridge.take(t)
		r := runPlugin(t, nil, append(slices.Clone(auto), "--list")...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		assertRequests(t, bridge.take(t), identified) // --list scrapes as a run does
		at := func(port string) string { return "127.0.0.1:" + port }
		assertList(t, r.stdout, map[string][2]string{
			handler.name:    {at(handler.port), "gostats (probe) at /stats (probe)"},
			expvarOnly.name: {at(expvarOnly.port), "expvar (probe) at /debug/vars (probe)"},
			prom.name:       {at(prom.port), "prometheus (probe) at /metrics (probe)"},
			second.name:     {at(secondStats), "gostats (probe) at /stats (probe)"},
			cloudwatch.name: {at(cloudwatch.port), "prometheus (label) at /metrics (label)"},
			optedOut.name:   {"-", "passed over: opted out (label gostats.scrape=false)"},
			notGo.name:      {"-", ": /stats: no known format, /metrics: no known format, /debug/vars: no known format)"},
		})
		if l := listLines(r.stdout)[notGo.name]; !strings.Contains(strings.Join(l, " "), "passed over: port 8080: not a Go runtime's stats (probed ") {
			t.Errorf("--list line of %s: %q, want it passed over as no Go runtime", notGo.name, l)
		}

		r = inTaskRun(t, "--list")
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("in the task: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		assertList(t, r.stdout, map[string][2]string{
			"web":                      {"127.0.0.1:8080", "gostats (probe) at /stats (probe)"},
			"api":                      {"127.0.0.1:9090", "expvar (probe) at /debug/vars (probe)"},
			"statsd":                   {"-", "passed over: lists no TCP port (no portMappings; a gostats.port label names one)"},
			"migrate":                  {"-", "passed over: not running (STOPPED)"},
			"mackerel-container-agent": {"-", "passed over: lists no TCP port (no portMappings; a gostats.port label names one)"},
		})
	})

	t.Run("under mackerel-agent once", func(t *testing.T) {
		custom := agentOnce(t, "examples/mackerel-agent.conf", "--format", "auto", "--label", "com.amazonaws.ecs.cluster="+own)
		assertGoTasks(t, custom, "custom.", goKeys)
		assertHealth(t, custom, "custom.", health{found: 5, ok: 5}, scrapeTimeout+runMargin)

		r := agentOnceInTask(t, image, taskCluster, pause, []string{"ECS_CONTAINER_METADATA_URI_V4=" + md.URL}, taskCommand)
		custom = agentCustomValues(t, []byte(r.stdout))
		assertGoTasks(t, custom, "custom.", []string{"web", "api"})
		assertHealth(t, custom, "custom.", health{found: 2, ok: 2}, scrapeTimeout+runMargin)
		if t.Failed() {
			t.Logf("mackerel-agent stderr:\n%s", r.stderr)
		}
	})

	t.Run("the default --format gostats: the labelled containers as their labels say", func(t *testing.T) {
		args := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + own,
			"--timeout", scrapeTimeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state")}
		bridge.take(t)
		r := runPlugin(t, nil, args...)
		got := bridge.take(t)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		m := parseMetrics(t, r.stdout)
		// Read: the handler, the second port (its label's port, the format's
		// path) and the CloudWatch task (prometheus at /metrics); the
		// expvar-only, client_golang and non-Go services fail at /stats.
		assertGoTasks(t, m, "", []string{handler.port, secondStats, cloudwatch.port})
		assertHealth(t, m, "", health{found: 6, ok: 3, failed: 3}, scrapeTimeout+runMargin)
		assertRequests(t, got, map[string]map[string]int{
			"handler": {"/stats": 1}, "expvar": {"/stats": 1}, "prometheus": {"/stats": 1},
			"second-port:9090": {"/stats": 1}, "cloudwatch": {"/metrics": 1}, "not-go": {"/stats": 1},
		})
		var warned []string
		for _, l := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
			for _, tk := range []task{handler, expvarOnly, prom, second, cloudwatch, optedOut, notGo} {
				if strings.HasPrefix(l, fmt.Sprintf("warning: scrape http://127.0.0.1:%s/stats (container %s ", tk.port, tk.name)) {
					warned = append(warned, tk.name)
				}
			}
		}
		if want := []string{expvarOnly.name, prom.name, notGo.name}; !slices.Equal(slices.Sorted(slices.Values(warned)), slices.Sorted(slices.Values(want))) ||
			strings.Count(r.stderr, "\n") != len(want) {
			t.Errorf("stderr:\n%s\nwant one warning each for %q", r.stderr, want)
		}

		r = runPlugin(t, nil, append(args, "--list")...)
		at := func(port string) string { return "127.0.0.1:" + port }
		assertList(t, r.stdout, map[string][2]string{
			handler.name:    {at(handler.port), "gostats (default) at /stats (default)"},
			expvarOnly.name: {at(expvarOnly.port), "gostats (default) at /stats (default)"},
			prom.name:       {at(prom.port), "gostats (default) at /stats (default)"},
			second.name:     {at(secondStats), "gostats (default) at /stats (default)"},
			cloudwatch.name: {at(cloudwatch.port), "prometheus (label) at /metrics (label)"},
			optedOut.name:   {"-", "passed over: opted out (label gostats.scrape=false)"},
			notGo.name:      {at(notGo.port), "gostats (default) at /stats (default)"},
		})
	})
}

// workerWithLabel is the recorded Fargate task metadata answer with its
// container api changed as a task definition gives a worker no
// portMappings and a dockerLabels gostats.port: no Ports, the label in its
// Labels (the task metadata lists a container's dockerLabels there).
func workerWithLabel(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/ecs/task-metadata-v4-fargate.json")
	if err != nil {
		t.Fatal(err)
	}
	var md map[string]any
	if err := json.Unmarshal(b, &md); err != nil {
		t.Fatal(err)
	}
	changed := 0
	for _, c := range md["Containers"].([]any) {
		c := c.(map[string]any)
		if c["Name"] == "api" {
			delete(c, "Ports")
			c["Labels"].(map[string]any)["gostats.port"] = "9090"
			changed++
		}
	}
	if changed != 1 {
		t.Fatalf("the recorded answer has %d containers named api, want 1", changed)
	}
	b, err = json.MarshalIndent(md, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}
