package main

// Integration tests of the OTLP output (--output otlp): the built binary over
// tasks on the real Docker Engine (bridge, awsvpc-like, and a Fargate-like
// task read through the task metadata endpoint) sending to the real
// OpenTelemetry Collector (otelcol_test.go), under a real mackerel-agent,
// and what a collector that is down, hung or refusing costs a run. The API
// key given to the plugin (otlpKey) must show nowhere but in the header the
// collector receives.

import (
	"context"
	"fmt"
	"maps"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
	colmetricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/collector/metrics/v1"
	commonpb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/common/v1"
	metricspb "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlppb/metrics/v1"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otlptest"
)

const (
	// otlpKey stands for a Mackerel API key, given to the plugin in
	// MACKEREL_APIKEY only.
	otlpKey = "itest-otlp-key-3f9c2a7e51d04b68a1c9e0f7b2d4c6a8"
	// otlpKeyAttr is the data point attribute the collector copies the
	// received Mackerel-Api-Key header into.
	otlpKeyAttr = "received.mackerel-api-key"
	// otlpScope is the instrumentation scope of everything the plugin sends.
	otlpScope = "github.com/ecs-gostats/mackerel-plugin-ecs-gostats"
	// otlpExampleEndpoint is Mackerel's endpoint, as the examples give it.
	otlpExampleEndpoint = "otlp.mackerelio.com:4317"
)

// otlpHandlerSeries are the series of a target that answered with the
// handler's /stats, in the order sent: "name [unit] kind {attributes}".
// docs/otlp.md has them in prose.
var otlpHandlerSeries = []string{
	"ecs_gostats.up [1] gauge {}",
	"go.goroutine.count [{goroutine}] sum/updown {}",
	"go.memory.used [By] sum/updown {go.memory.type=stack}",
	"go.memory.used [By] sum/updown {go.memory.type=other}",
	"go.memory.allocated [By] sum/monotonic {}",
	"go.memory.gc.cycles [{gc_cycle}] sum/monotonic {}",
	"go.memory.gc.goal [By] sum/updown {}",
	"go.processor.limit [{thread}] sum/updown {}",
	"ecs_gostats.memory.sys [By] gauge {}",
	"ecs_gostats.memory.alloc [By] gauge {}",
	"ecs_gostats.memory.mallocs [{allocation}] sum/monotonic {}",
	"ecs_gostats.memory.frees [{free}] sum/monotonic {}",
	"ecs_gostats.memory.lookups [{lookup}] sum/monotonic {}",
	"ecs_gostats.heap.sys [By] gauge {}",
	"ecs_gostats.heap.idle [By] gauge {}",
	"ecs_gostats.heap.inuse [By] gauge {}",
	"ecs_gostats.heap.released [By] gauge {}",
	"ecs_gostats.heap.objects [{object}] gauge {}",
	"ecs_gostats.cgo.calls [{call}] sum/monotonic {}",
}

// otlpPoint is one data point as received, flattened.
type otlpPoint struct {
	series      string // "name [unit] kind {attributes}", without otlpKeyAttr
	value       float64
	double      bool
	start, time uint64
	key         string // the value of otlpKeyAttr
	keys        int    // how many otlpKeyAttr attributes it has
}

// otlpResource is one received resource.
type otlpResource struct {
	attrs  map[string]string
	scope  string // name@version
	points []otlpPoint
}

// value is the value of the series' point, and whether there is one.
func (r otlpResource) value(series string) (float64, bool) {
	for _, p := range r.points {
		if p.series == series {
			return p.value, true
		}
	}
	return 0, false
}

// otlpFlatten flattens a received resource, failing on attributes that are
// not strings or appear twice.
func otlpFlatten(t *testing.T, rm *metricspb.ResourceMetrics) otlpResource {
	t.Helper()
	r := otlpResource{attrs: map[string]string{}}
	for _, kv := range rm.GetResource().GetAttributes() {
		if _, dup := r.attrs[kv.Key]; dup {
			t.Errorf("resource attribute %s twice", kv.Key)
		}
		// container.image.tags is a string array, flattened as [a b]
		if arr, ok := kv.Value.GetValue().(*commonpb.AnyValue_ArrayValue); ok && kv.Key == "container.image.tags" {
			var vs []string
			for _, v := range arr.ArrayValue.GetValues() {
				vs = append(vs, v.GetStringValue())
			}
			r.attrs[kv.Key] = "[" + strings.Join(vs, " ") + "]"
			continue
		}
		if _, ok := kv.Value.GetValue().(*commonpb.AnyValue_StringValue); !ok || kv.Value.GetStringValue() == "" {
			t.Errorf("resource attribute %s is not a non-empty string: %v", kv.Key, kv.Value)
		}
		r.attrs[kv.Key] = kv.Value.GetStringValue()
	}
	if n := len(rm.GetScopeMetrics()); n != 1 {
		t.Errorf("%d scopes, want 1", n)
	}
	for _, sm := range rm.GetScopeMetrics() {
		r.scope = sm.GetScope().GetName() + "@" + sm.GetScope().GetVersion()
		for _, m := range sm.GetMetrics() {
			kind, points := otelcoltest.Kind(m), append(m.GetGauge().GetDataPoints(), m.GetSum().GetDataPoints()...)
			for _, p := range points {
				pt := otlpPoint{start: p.StartTimeUnixNano, time: p.TimeUnixNano}
				var attrs []string
				for _, kv := range p.Attributes {
					if kv.Key == otlpKeyAttr {
						pt.key = kv.Value.GetStringValue()
						pt.keys++
						continue
					}
					attrs = append(attrs, kv.Key+"="+kv.Value.GetStringValue())
				}
				pt.series = fmt.Sprintf("%s [%s] %s {%s}", m.Name, m.Unit, kind, strings.Join(attrs, ","))
				switch v := p.Value.(type) {
				case *metricspb.NumberDataPoint_AsInt:
					pt.value = float64(v.AsInt)
				case *metricspb.NumberDataPoint_AsDouble:
					pt.value, pt.double = v.AsDouble, true
				}
				r.points = append(r.points, pt)
			}
		}
	}
	return r
}

// otlpWant is what one target's resource must be.
type otlpWant struct {
	attrs   map[string]string // exactly these resource attributes
	up      bool
	started time.Time // the container's start, the sums' start time
	key     string    // the header every data point arrived with ("" for none)
}

// otlpCheck checks a received resource against want: the attributes
// exactly, the scope, the series by name, unit and kind in order, the
// header on every point, the times, and that the values are plausible for
// a live Go process.
func otlpCheck(t *testing.T, r otlpResource, want otlpWant, notBefore, notAfter time.Time) {
	t.Helper()
	if !maps.Equal(r.attrs, want.attrs) {
		t.Errorf("resource attributes\n got  %v\n want %v", r.attrs, want.attrs)
	}
	if r.scope != otlpScope+"@itest" {
		t.Errorf("scope %s, want %s@itest", r.scope, otlpScope)
	}
	var series []string
	for _, p := range r.points {
		series = append(series, p.series)
		if p.double || math.Trunc(p.value) != p.value {
			t.Errorf("%s = %v: want an integer", p.series, p.value)
		}
		if p.key != want.key || p.keys != min(1, len(want.key)) {
			t.Errorf("%s arrived with header %q (%d times), want %q", p.series, p.key, p.keys, want.key)
		}
		if p.time < uint64(notBefore.UnixNano()) || p.time > uint64(notAfter.UnixNano()) {
			t.Errorf("%s at %s, not within the run (%s to %s)", p.series, time.Unix(0, int64(p.time)), notBefore, notAfter)
		}
		switch {
		case strings.Contains(p.series, " gauge "):
			if p.start != 0 {
				t.Errorf("%s: a gauge with a start time", p.series)
			}
		case p.start != uint64(want.started.UnixNano()) || p.start > p.time:
			t.Errorf("%s starts at %s, want the container's start %s", p.series, time.Unix(0, int64(p.start)), want.started)
		}
	}
	if !want.up {
		if !slices.Equal(series, otlpHandlerSeries[:1]) || r.points[0].value != 0 {
			t.Errorf("a failed target: series %q, want only %s = 0", series, otlpHandlerSeries[0])
		}
		return
	}
	if !slices.Equal(series, otlpHandlerSeries) {
		t.Errorf("series\n got  %q\n want %q", series, otlpHandlerSeries)
		return
	}
	v := map[string]float64{}
	for _, p := range r.points {
		name, _, _ := strings.Cut(p.series, " ")
		if strings.Contains(p.series, "go.memory.type=") {
			name += "." + strings.TrimSuffix(p.series[strings.Index(p.series, "=")+1:], "}")
		}
		v[name] = p.value
	}
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"up = 1", v["ecs_gostats.up"] == 1},
		{"go.goroutine.count >= 1", v["go.goroutine.count"] >= 1},
		{"stacks > 0", v["go.memory.used.stack"] > 0},
		{"other memory > 0", v["go.memory.used.other"] > 0},
		{"other = sys - released - stacks", v["go.memory.used.other"] == v["ecs_gostats.memory.sys"]-v["ecs_gostats.heap.released"]-v["go.memory.used.stack"]},
		{"allocated >= alloc > 0", v["go.memory.allocated"] >= v["ecs_gostats.memory.alloc"] && v["ecs_gostats.memory.alloc"] > 0},
		{"mallocs > 0", v["ecs_gostats.memory.mallocs"] > 0},
		{"frees <= mallocs", v["ecs_gostats.memory.frees"] <= v["ecs_gostats.memory.mallocs"]},
		{"objects = mallocs - frees", v["ecs_gostats.heap.objects"] == v["ecs_gostats.memory.mallocs"]-v["ecs_gostats.memory.frees"]},
		{"gc goal > 0", v["go.memory.gc.goal"] > 0},
		{"processor limit >= 1", v["go.processor.limit"] >= 1},
		{"gc cycles, lookups, cgo calls >= 0", v["go.memory.gc.cycles"] >= 0 && v["ecs_gostats.memory.lookups"] >= 0 && v["ecs_gostats.cgo.calls"] >= 0},
		{"sys >= heap sys = idle + inuse", v["ecs_gostats.memory.sys"] >= v["ecs_gostats.heap.sys"] && v["ecs_gostats.heap.sys"] == v["ecs_gostats.heap.idle"]+v["ecs_gostats.heap.inuse"]},
		{"released <= idle", v["ecs_gostats.heap.released"] <= v["ecs_gostats.heap.idle"]},
		{"alloc <= heap inuse", v["ecs_gostats.memory.alloc"] <= v["ecs_gostats.heap.inuse"]},
		{"sys under 1 GiB (the test app)", v["ecs_gostats.memory.sys"] < 1<<30},
	} {
		if !c.ok {
			t.Errorf("implausible values: want %s; got %v", c.what, v)
		}
	}
}

// otlpDockerAttrs are the resource attributes of a target found through
// Docker: a container scripts/ecs-task.sh started (revision 1, task ARN in
// ap-northeast-1 and account 123456789012, the test app's image) on this
// host, whose ECS agent is withInstanceARN's for cluster.
func otlpDockerAttrs(t *testing.T, cluster, family, taskID, container, containerID string, port int) map[string]string {
	t.Helper()
	host, err := docker(context.Background(), "info", "--format", "{{.Name}}")
	if err != nil {
		t.Fatalf("%v: %s", err, host)
	}
	imageName, imageTag, _ := strings.Cut(image, ":")
	return map[string]string{
		"aws.ecs.container.arn": otlpInstanceARN(cluster),
		"container.image.name":  imageName,
		"container.image.tags":  "[" + imageTag + "]",
		"service.name":          family,
		"service.instance.id":   fmt.Sprintf("%s/%s:%d", taskID, container, port),
		"cloud.provider":        "aws",
		"cloud.platform":        "aws_ecs",
		"cloud.region":          "ap-northeast-1",
		"cloud.account.id":      "123456789012",
		"aws.ecs.cluster.arn":   "arn:aws:ecs:ap-northeast-1:123456789012:cluster/" + cluster,
		"aws.ecs.task.arn":      "arn:aws:ecs:ap-northeast-1:123456789012:task/" + cluster + "/" + taskID,
		"aws.ecs.task.id":       taskID,
		"aws.ecs.task.family":   family,
		"aws.ecs.task.revision": "1",
		"aws.ecs.launchtype":    "ec2",
		"container.name":        container,
		"container.id":          containerID,
		"host.name":             strings.TrimSpace(host),
	}
}

// containerStarted is when Docker created a container, in whole seconds
// as its container list gives it: the start of the container's series.
func containerStarted(t *testing.T, id string) time.Time {
	t.Helper()
	out, err := docker(context.Background(), "inspect", "-f", "{{.Created}}", id)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	created, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	return created.Truncate(time.Second)
}

// otlpReceived waits for n resources, then a little longer for any more,
// and returns them flattened by container.id.
func otlpReceived(t *testing.T, col *otelcoltest.Collector, n int) map[string]otlpResource {
	t.Helper()
	got := col.WaitMetrics(t, n, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // twice the file exporter's flush interval and more
	if more, err := col.Metrics(); err != nil || len(more) != len(got) {
		t.Errorf("more resources arrived: %d, then %d (%v)", len(got), len(more), err)
	}
	if len(got) != n {
		t.Errorf("%d resources received, want %d", len(got), n)
	}
	byID := map[string]otlpResource{}
	for _, rm := range got {
		r := otlpFlatten(t, rm)
		id := r.attrs["container.id"]
		if _, dup := byID[id]; dup {
			t.Errorf("container %s sent twice", id)
		}
		byID[id] = r
	}
	return byID
}

// watched is a finished run of the plugin whose argv and environment were
// read from /proc while it ran.
type watched struct {
	result
	cmdlines [][]byte // every /proc/<pid>/cmdline read while it ran
	environ  []byte   // its /proc/<pid>/environ, read first
}

// runPluginWatched runs the built plugin with env added, as runPlugin does,
// and reads its command line (what ps shows) from /proc while it runs: once
// right after it started (exec has happened when Start returns) and every
// 10 ms after that.
func runPluginWatched(t *testing.T, env []string, args ...string) watched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pluginBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var w watched
	proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
	environ, environErr := os.ReadFile(proc + "/environ")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	for running := true; running; {
		if b, _ := os.ReadFile(proc + "/cmdline"); len(b) > 0 {
			w.cmdlines = append(w.cmdlines, b)
		}
		if w.environ == nil {
			if b, _ := os.ReadFile(proc + "/environ"); len(b) > 0 {
				w.environ = b
			}
		}
		select {
		case err = <-done:
			running = false
		case <-time.After(10 * time.Millisecond):
		}
	}
	w.result = result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if exit, ok := err.(*exec.ExitError); ok && exit.Exited() {
		w.code, err = exit.ExitCode(), nil
	}
	if err != nil {
		t.Fatalf("running %s: %v", pluginBin, err)
	}
	if len(w.cmdlines) == 0 || !strings.Contains(string(w.environ), "MACKEREL_APIKEY="+otlpKey) {
		t.Fatalf("could not read the running plugin's command line (%d reads) and environment (key there: %v; first read: %d bytes, %v)",
			len(w.cmdlines), strings.Contains(string(w.environ), otlpKey), len(environ), environErr)
	}
	return w
}

// assertNoKey fails when the key shows in any of texts: the plugin's
// outputs, its state file, its argv.
func assertNoKey(t *testing.T, texts map[string]string) {
	t.Helper()
	for what, text := range texts {
		if strings.Contains(text, otlpKey) {
			t.Errorf("the API key is in %s", what)
		}
	}
}

// assertKeyNowhere checks the key is in none of a watched run's stdout,
// stderr, argv (every cmdline read) and the state file.
func assertKeyNowhere(t *testing.T, w watched, state string) {
	t.Helper()
	texts := map[string]string{"stdout": w.stdout, "stderr": w.stderr}
	for i, c := range w.cmdlines {
		texts[fmt.Sprintf("the command line (/proc/<pid>/cmdline, read %d)", i+1)] = string(c)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Errorf("state file: %v", err)
	}
	texts["the state file"] = string(b)
	assertNoKey(t, texts)
}

// otlpHealthKeys are stdout's keys of a run with otlp in --output: the
// health lines, otlp.errors last.
func otlpHealthKeys() []string {
	var keys []string
	for _, h := range append(slices.Clone(healthMetrics), "otlp.errors") {
		keys = append(keys, healthPrefix+h)
	}
	return keys
}

// TestOTLPTasks: on a container instance running awsvpc and bridge tasks,
// one run of the built binary with --output otlp, over TLS to a collector
// whose CA only SSL_CERT_FILE names, delivers every target as its own
// resource with the task's identity, each with the key as its
// Mackerel-Api-Key header; stdout is the health lines alone, and the key is
// nowhere else, not in --list either.
func TestOTLPTasks(t *testing.T) {
	needDocker(t)
	cluster := ownCluster(t, "otlp")
	network, _ := ownNetwork(t, cluster)

	// Two awsvpc tasks of family orders (the first with a sidecar serving
	// stats on 9090), two bridge tasks of family web and a bridge task whose
	// app answers 500.
	const task1, task2 = "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "1d6c2a9f3e8b4da4c7f2b1a0e9d8c7b6"
	addr1, ids1 := awsvpcTask(t, cluster, network, "orders", task1, map[string]string{"orders": ":8080", "sidecar": ":9090"})
	addr2, ids2 := awsvpcTask(t, cluster, network, "orders", task2, map[string]string{"orders": ":8080"})
	bridge := map[string]string{ // task id -> mode
		"2e7d3b0a4f9c4eb5d8a3c2b1f0e9d8c7": "ok", "3f8e4c1b5a0d4fc6e9b4d3c2a1f0e9d8": "ok", "4a9f5d2c6b1e40d7fac5e4d3b2a1f0e9": "error",
	}
	bridgeIDs := map[string]string{} // task id -> container id
	var urls []string
	for _, id := range slices.Sorted(maps.Keys(bridge)) {
		tk := mustRunTask(t, cluster, "web", "--container-name", "web", "--task-id", id, "--mode", bridge[id])
		bridgeIDs[id] = tk.id
		urls = append(urls, "http://127.0.0.1:"+tk.port+"/")
	}
	urls = append(urls, "http://"+addr1+":8080/stats", "http://"+addr1+":9090/stats", "http://"+addr2+":8080/stats")
	for _, u := range urls {
		if err := waitURL(u); err != nil {
			t.Fatal(err)
		}
	}
	agent := ordersAgent(t, addr1, ids1, addr2, ids2)

	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{TLS: true, HeaderAttribute: otlpKeyAttr})
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + cluster,
		"--ecs-agent-url", withInstanceARN(t, "", cluster, agent.URL), "--timeout", "4s", "--tempfile", state,
		"--output", "otlp", "--otlp-endpoint", col.Endpoint}
	env := []string{"SSL_CERT_FILE=" + col.CAFile, "MACKEREL_APIKEY=" + otlpKey}
	runStart := time.Now()
	r := runPluginWatched(t, env, args...)
	runEnd := time.Now()

	if r.code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
	}
	// stderr: the scrape warning of the task that answers 500, nothing else
	if lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "warning: scrape ") || !strings.Contains(lines[0], bridgeIDs["4a9f5d2c6b1e40d7fac5e4d3b2a1f0e9"][:12]) {
		t.Errorf("stderr:\n%s\nwant the scrape warning of the failing task alone", r.stderr)
	}
	if got := stdoutKeys(r.stdout); !slices.Equal(got, otlpHealthKeys()) {
		t.Errorf("stdout keys %q, want the health lines alone, %q", got, otlpHealthKeys())
	}
	m := parseMetrics(t, r.stdout)
	for k, want := range map[string]float64{"targets.found": 6, "targets.ok": 5, "targets.failed": 1, "discovery.errors": 0, "otlp.errors": 0} {
		if m[healthPrefix+k] != want {
			t.Errorf("%s = %v, want %v", k, m[healthPrefix+k], want)
		}
	}

	got := otlpReceived(t, col, 6)
	want := map[string]otlpWant{
		ids1["orders"]:  {attrs: otlpDockerAttrs(t, cluster, "orders", task1, "orders", ids1["orders"], 8080), up: true},
		ids1["sidecar"]: {attrs: otlpDockerAttrs(t, cluster, "orders", task1, "sidecar", ids1["sidecar"], 9090), up: true},
		ids2["orders"]:  {attrs: otlpDockerAttrs(t, cluster, "orders", task2, "orders", ids2["orders"], 8080), up: true},
	}
	for task, id := range bridgeIDs {
		want[id] = otlpWant{attrs: otlpDockerAttrs(t, cluster, "web", task, "web", id, 8080), up: bridge[task] == "ok"}
	}
	for id, w := range want {
		w.started = containerStarted(t, id)
		t.Run(w.attrs["service.instance.id"], func(t *testing.T) {
			r, ok := got[id]
			if !ok {
				t.Fatalf("nothing received for container %s; received %q", id, slices.Sorted(maps.Keys(got)))
			}
			w.key = otlpKey
			otlpCheck(t, r, w, runStart, runEnd)
		})
	}
	if testing.Verbose() {
		t.Logf("run took %s; %d resources of %d data points", r.elapsed, len(got), len(got)*len(otlpHandlerSeries)-(len(otlpHandlerSeries)-1))
	}
	assertKeyNowhere(t, r, state)

	// --list with the same options and key: no push, no key.
	l := runPluginWatched(t, env, append(slices.Clone(args), "--list")...)
	if l.code != 0 || len(strings.Split(strings.TrimSpace(l.stdout), "\n")) < 6 {
		t.Errorf("--list: exit %d, stdout:\n%s\nstderr:\n%s", l.code, l.stdout, l.stderr)
	}
	assertKeyNowhere(t, l, state)
	if n, err := col.Metrics(); err != nil || len(n) != 6 {
		t.Errorf("--list sent to the collector: %d resources now (%v)", len(n), err)
	}
}

// TestOTLPFargateTask: the plugin in a Fargate-like task (the command of
// examples/mackerel-container-agent.otlp.yml, --source task-metadata, in the
// task's network namespace), with the key in its environment as the task
// definition's secret puts it and the collector's CA as SSL_CERT_FILE,
// delivers each app container of the task as its own resource, the task's
// identity from the task metadata; stdout is the health lines alone.
func TestOTLPFargateTask(t *testing.T) {
	needDocker(t)
	cluster := ownCluster(t, "otlp-fargate")
	network, gateway := ownNetwork(t, cluster)
	image := pluginImage(t)

	// The task, as TestFargateTask lays it out.
	const taskID = "5b6c7d8e9f0a41b2c3d4e5f6a7b8c9d0"
	pause := startNetnsTask(t, cluster, network, "fargate", taskID, map[string]string{"web": ":8080", "api": ":9090"}).pause
	md := fargateMetadata(t, gateway)
	// The collector where the task reaches the host, over TLS: the key never
	// crosses a network in plain text.
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{TLS: true, HeaderAttribute: otlpKeyAttr, Host: gateway})

	command := containerAgentCommandOf(t, "examples/mackerel-container-agent.otlp.yml", "/mackerel-plugin-ecs-gostats")
	i := slices.Index(command, "--otlp-endpoint")
	if i < 0 || command[i+1] != otlpExampleEndpoint {
		t.Fatalf("the example's command %q does not send to %s", command, otlpExampleEndpoint)
	}
	command[i+1] = col.Endpoint
	// The key as ECS gives a secret to a container: in its environment.
	// docker takes `-e MACKEREL_APIKEY` without a value from its own
	// environment, so the key is in no argv.
	create := []string{"create", "--label", "com.amazonaws.ecs.cluster=" + cluster, "--network", "container:" + pause,
		"-e", "ECS_CONTAINER_METADATA_URI_V4=" + md.URL, "-e", "SSL_CERT_FILE=/tmp/ca.pem", "-e", "MACKEREL_APIKEY",
		"--entrypoint", command[0], image}
	create = append(create, command[1:]...)
	created, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost, "MACKEREL_APIKEY="+otlpKey), "docker", create...)
	if err != nil || created.code != 0 {
		t.Fatalf("docker create: %v, exit %d: %s", err, created.code, created.stderr)
	}
	id := strings.TrimSpace(created.stdout)
	if out, err := docker(context.Background(), "cp", col.CAFile, id+":/tmp/ca.pem"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	runStart := time.Now()
	r, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost), "docker", "start", "-a", id)
	runEnd := time.Now()
	if err != nil || r.code != 0 || r.stderr != "" {
		t.Fatalf("the plugin in the task: %v, exit %d, stderr:\n%s", err, r.code, r.stderr)
	}
	if got := stdoutKeys(r.stdout); !slices.Equal(got, otlpHealthKeys()) {
		t.Errorf("stdout keys %q, want the health lines alone, %q", got, otlpHealthKeys())
	}
	m := parseMetrics(t, r.stdout)
	if m[healthPrefix+"targets.ok"] != 2 || m[healthPrefix+"otlp.errors"] != 0 {
		t.Errorf("health %v", m)
	}
	assertNoKey(t, map[string]string{"stdout": r.stdout, "stderr": r.stderr})

	// The recorded task metadata: task b3f8e0c2... of family shop, revision
	// 12, in cluster prod of ap-northeast-1, account 123456789012, on Fargate.
	const task = "b3f8e0c2a7d94f51a6e2c4d9f1a0b7e3"
	attrs := func(container, dockerID string, port int) map[string]string {
		return map[string]string{
			"service.name":            "shop",
			"service.instance.id":     fmt.Sprintf("%s/%s:%d", task, container, port),
			"cloud.provider":          "aws",
			"cloud.platform":          "aws_ecs",
			"cloud.region":            "ap-northeast-1",
			"cloud.account.id":        "123456789012",
			"aws.ecs.cluster.arn":     "arn:aws:ecs:ap-northeast-1:123456789012:cluster/prod",
			"aws.ecs.task.arn":        "arn:aws:ecs:ap-northeast-1:123456789012:task/prod/" + task,
			"aws.ecs.task.id":         task,
			"aws.ecs.task.family":     "shop",
			"aws.ecs.task.revision":   "12",
			"aws.ecs.launchtype":      "fargate",
			"container.name":          container,
			"container.id":            dockerID,
			"cloud.availability_zone": "ap-northeast-1a",
			"container.image.name":    "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop-" + container,
			"container.image.tags":    "[1.42.0]",
		}
	}
	started := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts.Truncate(time.Second) // the plugin keeps unix seconds
	}
	want := map[string]otlpWant{
		task + "-2531612879": {attrs: attrs("web", task+"-2531612879", 8080), up: true, started: started("2026-11-25T08:01:21.018386322Z"), key: otlpKey},
		task + "-0764279414": {attrs: attrs("api", task+"-0764279414", 9090), up: true, started: started("2026-11-25T08:01:21.502845110Z"), key: otlpKey},
	}
	got := otlpReceived(t, col, 2)
	for id, w := range want {
		t.Run(w.attrs["container.name"], func(t *testing.T) {
			r, ok := got[id]
			if !ok {
				t.Fatalf("nothing received for container %s; received %q", id, slices.Sorted(maps.Keys(got)))
			}
			otlpCheck(t, r, w, runStart, runEnd)
		})
	}
}

// TestOTLPInsecureRefused: plain text to a collector off this host while
// MACKEREL_APIKEY is set is a usage error naming --otlp-insecure, before any
// connection (collector.invalid resolves nowhere and is never dialled).
func TestOTLPInsecureRefused(t *testing.T) {
	r := runPlugin(t, []string{"MACKEREL_APIKEY=" + otlpKey}, "--output", "otlp", "--otlp-endpoint", "collector.invalid:4317",
		"--otlp-insecure", "--docker-host", "unix:///nonexistent/docker.sock", "--tempfile", filepath.Join(t.TempDir(), "state"))
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	if r.code != 2 || r.stdout != "" || len(lines) != 1 ||
		!strings.HasPrefix(lines[0], "mackerel-plugin-ecs-gostats: --otlp-insecure: refused while MACKEREL_APIKEY is set") ||
		!strings.Contains(lines[0], "collector.invalid") {
		t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 2 and one usage line naming --otlp-insecure", r.code, r.stdout, r.stderr)
	}
	assertNoKey(t, map[string]string{"stdout": r.stdout, "stderr": r.stderr})
}

// otlpRefusingServer is an OTLP/gRPC receiver in plain text (h2c) on
// loopback that answers every export as Mackerel answers a bad key, quoting
// the key it got, which the plugin must not print. It returns its
// host:port.
func otlpRefusingServer(t *testing.T) string {
	t.Helper()
	return otlptest.Serve(t, func(r *connect.Request[colmetricspb.ExportMetricsServiceRequest]) (*colmetricspb.ExportMetricsServiceResponse, error) {
		return nil, connect.NewError(connect.CodeUnauthenticated, fmt.Errorf("invalid API key %q", r.Header().Get("Mackerel-Api-Key")))
	})
}

// TestOTLPCollectorFails: whatever the collector does (down, hung, refusing
// the key, no TLS), a run with --output mackerel,otlp prints the same
// Mackerel lines as a run without OTLP plus otlp.errors 1, exactly one
// warning, and ends within --timeout; the key is in none of its outputs,
// its argv or its state file.
func TestOTLPCollectorFails(t *testing.T) {
	needDocker(t)
	agent := withInstanceARN(t, "", cluster, "")
	args := func(state string) []string {
		return append(clusterArgs(state), "--label", "com.amazonaws.ecs.task-definition-family="+familyWeb, "--ecs-agent-url", agent)
	}
	base := runPlugin(t, nil, args(filepath.Join(t.TempDir(), "state"))...)
	if base.code != 0 || base.stderr != "" {
		t.Fatalf("without OTLP: exit %d, stderr:\n%s", base.code, base.stderr)
	}
	baseKeys := stdoutKeys(base.stdout)
	if n := len(baseKeys) - len(healthMetrics); n != len(healthyOf(familyWeb))*len(gaugeMetrics) {
		t.Fatalf("without OTLP: %d task lines, want %d", n, len(healthyOf(familyWeb))*len(gaugeMetrics))
	}

	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := refused.Addr().String()
	refused.Close() // nothing listens there now
	// accepts, never answers
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	refusing := otlpRefusingServer(t)
	plain := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{})

	for _, tt := range []struct {
		name, endpoint string
		insecure       bool
		warning        string
	}{
		{"down", down, true, "connection refused"},
		{"hung", hung.Addr().String(), true, "DeadlineExceeded"},
		{"refusing the key", refusing, true, "Unauthenticated: invalid API key"},
		{"no TLS", plain.Endpoint, false, "Unavailable"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			a := append(args(state), "--output", "mackerel,otlp", "--otlp-endpoint", tt.endpoint)
			if tt.insecure {
				a = append(a, "--otlp-insecure")
			}
			r := runPluginWatched(t, []string{"MACKEREL_APIKEY=" + otlpKey}, a...)
			if r.code != 0 {
				t.Fatalf("exit %d; stderr:\n%s", r.code, r.stderr)
			}
			t.Logf("stderr: %s", r.stderr)
			lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "warning: otlp "+tt.endpoint+": ") || !strings.Contains(lines[0], tt.warning) {
				t.Errorf("stderr %q\nwant one warning about %s saying %q", r.stderr, tt.endpoint, tt.warning)
			}
			if got, want := stdoutKeys(r.stdout), append(slices.Clone(baseKeys), healthPrefix+"otlp.errors"); !slices.Equal(got, want) {
				t.Errorf("stdout keys\n got  %q\n want %q (the run without OTLP's, and otlp.errors)", got, want)
			}
			m := parseMetrics(t, r.stdout)
			if m[healthPrefix+"otlp.errors"] != 1 || m[healthPrefix+"targets.ok"] != float64(len(healthyOf(familyWeb))) {
				t.Errorf("otlp.errors %v, targets.ok %v", m[healthPrefix+"otlp.errors"], m[healthPrefix+"targets.ok"])
			}
			if r.elapsed > scrapeTimeout+runMargin {
				t.Errorf("run took %s with --timeout %s", r.elapsed, scrapeTimeout)
			}
			assertKeyNowhere(t, r, state)
		})
	}
	if n, err := plain.Metrics(); err != nil || len(n) != 0 {
		t.Errorf("the plain-text collector received %d resources over a TLS client (%v)", len(n), err)
	}
}

// TestOTLPMackerelAgentOnce: examples/mackerel-agent.otlp.conf under a real
// mackerel-agent, the key in the agent's environment only (as its systemd
// environment file puts it there): the agent posts the Mackerel lines as
// before, plus otlp.errors 0, and the collector receives every shared task as
// its own resource with the key as its header.
func TestOTLPMackerelAgentOnce(t *testing.T) {
	needDocker(t)
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{HeaderAttribute: otlpKeyAttr})
	runStart := time.Now()
	custom := agentOnceWith(t, agentRun{
		example: "examples/mackerel-agent.otlp.conf",
		env:     []string{"MACKEREL_APIKEY=" + otlpKey},
		set:     map[string]string{"--otlp-endpoint": col.Endpoint},
		args:    []string{"--otlp-insecure", "--label", "com.amazonaws.ecs.cluster=" + cluster, "--ecs-agent-url", withInstanceARN(t, "", cluster, "")},
	})
	runEnd := time.Now()
	var want []string
	for _, k := range keysFor(portsOf(healthy), gaugeMetrics) {
		want = append(want, "custom."+k)
	}
	assertKeys(t, custom, want)
	if v, ok := custom["custom."+healthPrefix+"otlp.errors"]; !ok || v != 0 {
		t.Errorf("custom.%sotlp.errors = %v (posted: %v), want 0", healthPrefix, v, ok)
	}
	got := otlpReceived(t, col, len(healthy)+len(broken))
	for _, tk := range append(slices.Clone(healthy), broken...) {
		r, ok := got[tk.id]
		if !ok {
			t.Errorf("nothing received for task %s (%s)", tk.name, tk.mode)
			continue
		}
		taskID := strings.TrimPrefix(r.attrs["aws.ecs.task.arn"], "arn:aws:ecs:ap-northeast-1:123456789012:task/"+cluster+"/")
		w := otlpWant{attrs: otlpDockerAttrs(t, cluster, tk.family, taskID, "app", tk.id, 8080), up: tk.mode == "ok", key: otlpKey,
			started: containerStarted(t, tk.id)}
		w.attrs["deployment.environment.name"] = "production" // the example's env: the plugin's own OTEL_RESOURCE_ATTRIBUTES
		t.Run(tk.name, func(t *testing.T) { otlpCheck(t, r, w, runStart, runEnd) })
	}
}

// TestOTLPExamples: the OTLP examples are the plain ones plus the OTLP
// options, to Mackerel's endpoint over TLS, and say where the key comes
// from; the plugin takes their arguments with a key set (TLS: no refusal).
// TestOTLPMackerelAgentOnce and TestOTLPFargateTask run them.
func TestOTLPExamples(t *testing.T) {
	for _, tc := range []struct {
		file, plain string
		output      string
		keyFrom     []string // what the file must say about the key
	}{
		{
			file: "examples/mackerel-agent.otlp.conf", plain: "examples/mackerel-agent.conf",
			output:  "mackerel,otlp",
			keyFrom: []string{"MACKEREL_APIKEY=<API key>", "/etc/sysconfig/mackerel-agent", "/etc/default/mackerel-agent"},
		},
		{
			file: "examples/mackerel-container-agent.otlp.yml", plain: containerAgentExample,
			output:  "otlp",
			keyFrom: []string{"MACKEREL_APIKEY", "secret", "examples/ecs-fargate-task-definition.json"},
		},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var command, plain []string
			if strings.HasSuffix(tc.file, ".conf") {
				command = loadAgentConf(t, tc.file)["ecs-gostats"].Command
				plain = loadAgentConf(t, tc.plain)["ecs-gostats"].Command
				if n := len(loadAgentConf(t, tc.file)); n != 1 {
					t.Errorf("%d plugin blocks, want 1", n)
				}
			} else {
				plugins := containerAgentPluginsOf(t, tc.file)
				if len(plugins) != 1 {
					t.Errorf("%d plugins, want 1", len(plugins))
				}
				command = plugins["ecs-gostats"].Command
				plain = containerAgentPlugins(t)["ecs-gostats"].Command
				assertTimeoutsFit(t, command, int64(plugins["ecs-gostats"].TimeoutSeconds))
			}
			want := append(slices.Clone(plain), "--output", tc.output, "--otlp-endpoint", otlpExampleEndpoint)
			if strings.HasSuffix(tc.file, ".conf") {
				want = append(want, "--timeout", "15s") // the push's time, with timeout_seconds = 30
			}
			if !slices.Equal(command, want) {
				t.Errorf("command %q, want %q (%s's, and the OTLP options)", command, want, tc.plain)
			}
			if slices.Contains(command, "--otlp-insecure") {
				t.Error("an example sends in plain text")
			}
			r := runPlugin(t, []string{"MACKEREL_APIKEY=" + otlpKey}, append(slices.Clone(command[1:]), "--version")...)
			if r.code != 0 {
				t.Errorf("the plugin refuses the example's arguments with a key set: exit %d: %s", r.code, r.stderr)
			}
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.keyFrom {
				if !strings.Contains(string(b), w) {
					t.Errorf("%s does not say %q about the key", tc.file, w)
				}
			}
		})
	}
}
