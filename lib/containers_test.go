package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// Container metrics against the Docker Engine API stand-in (internal/standin,
// the one the other tests and the bench use) listing containers, each
// publishing one or more ports to a golang-stats-api-handler stand-in, and
// answering their stats from the recorded answers of a real
// dockerd (internal/cstats/testdata), a fault, or nothing.

const (
	idCPUs  = "3843bb2760136545af095d7448ff22821f4c41c03774414336884104df270aaa" // docker_cpus_half_{1,2}.json
	idNoNet = "aca9019c46742bf4a84290eef71e3468657f56540db04a2374bfdf5a287a0432" // docker_network_none.json
)

// fakeContainer is a container of the stand-in: its name, id, container
// ports, and how its stats are answered: recorded files in turn (the last
// one repeated), or a fault.
type fakeContainer struct {
	name, id string
	ports    []uint16
	stats    []string // testdata files, one a call
	fault    string   // "500", "hang", "garbage", "404"
	// the inspect's answer: HostConfig's fields, State.Pid, and a fault
	// of its own ("500", "hang")
	hostConfig   map[string]any
	pid          int
	inspectFault string
	labels       map[string]string
}

// fakeDocker is the Docker Engine API stand-in (internal/standin) serving
// the containers: their list, their stats from the recorded answers, their
// inspect answers, and their faults; noStats: every stats path is 404 as a
// daemon without the endpoint answers.
type fakeDocker struct {
	containers []fakeContainer
	noStats    bool
	daemon     *standin.Docker
}

// startFakeDocker starts a golang-stats-api-handler stand-in for each
// container port and the Docker stand-in listing them, and returns its
// DOCKER_HOST. The stats calls must ask for one sample at once.
func startFakeDocker(t *testing.T, d *fakeDocker) string {
	t.Helper()
	daemon := &standin.Docker{Name: "ip-10-0-1-23", NoStats: d.noStats, Inspect: map[string][]byte{},
		Stats: map[string][][]byte{}, Faults: map[string]string{}}
	var list []map[string]any
	for _, c := range d.containers {
		var ports []map[string]any
		for _, p := range c.ports {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				fmt.Fprint(w, `{"goroutine_num": 7}`)
			}))
			t.Cleanup(srv.Close)
			_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
			n, _ := strconv.Atoi(port)
			ports = append(ports, map[string]any{"IP": "0.0.0.0", "PrivatePort": p, "PublicPort": n, "Type": "tcp"})
		}
		labels := c.labels
		if labels == nil {
			labels = map[string]string{}
		}
		hc := map[string]any{"NetworkMode": "bridge"}
		maps.Copy(hc, c.hostConfig)
		list = append(list, map[string]any{"Id": c.id, "Names": []string{"/" + c.name}, "Created": 1700000000,
			"Ports": ports, "Labels": labels, "State": "running", "HostConfig": map[string]any{"NetworkMode": hc["NetworkMode"]}})
		inspect, err := json.Marshal(map[string]any{"Id": c.id, "Name": "/" + c.name, "HostConfig": hc,
			"State": map[string]any{"Running": true, "Pid": c.pid}})
		if err != nil {
			t.Fatal(err)
		}
		daemon.Inspect[c.id] = inspect
		for _, f := range c.stats {
			daemon.Stats[c.id] = append(daemon.Stats[c.id], readStatsTestdata(t, f))
		}
		if c.fault != "" {
			daemon.Faults["stats "+c.id] = c.fault
		}
		if c.inspectFault != "" {
			daemon.Faults["inspect "+c.id] = c.inspectFault
		}
	}
	var err error
	if daemon.Containers, err = json.Marshal(list); err != nil {
		t.Fatal(err)
	}
	d.daemon = daemon
	t.Cleanup(func() {
		for _, r := range daemon.RequestURIs() {
			path, query, _ := strings.Cut(r, "?")
			q, _ := url.ParseQuery(query)
			if strings.HasSuffix(path, "/stats") && (!slices.Contains([]string{"0", "false"}, q.Get("stream")) || !slices.Contains([]string{"1", "true"}, q.Get("one-shot"))) {
				t.Errorf("stats request %q: want one sample at once (stream=false&one-shot=true)", r)
			}
		}
	})
	return daemon.Start(t, "tcp")
}

// readStatsTestdata is a recorded stats answer of internal/cstats/testdata.
func readStatsTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "internal", "cstats", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// statsCalls and inspects count the daemon's calls of a container so far.
func (d *fakeDocker) statsCalls(id string) int {
	return d.daemon.Calls("GET /containers/" + id + "/stats")
}
func (d *fakeDocker) inspects(id string) int {
	return d.daemon.Calls("GET /containers/" + id + "/json")
}

// runContainers runs the plugin against host at now, with state.
func runContainers(t *testing.T, now time.Time, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), defaultParts(func() time.Time { return now }), args, "test", &out, &errOut)
	return code, out.String(), errOut.String()
}

// containerLinesOf are the lines of stdout of the container graphs and the
// containers' health.
func containerLinesOf(stdout string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if strings.Contains(l, ".container_") || strings.Contains(l, "_scrape.containers.") {
			out = append(out, l)
		}
	}
	return out
}

func TestContainerMetrics(t *testing.T) {
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{9090, 8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_2.json"}},
		{name: "nonet", id: idNoNet, ports: []uint16{8080}, stats: []string{"docker_network_none.json"}},
	}}
	host := startFakeDocker(t, d)
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"-H", host, "--key", "{name}-{container_port}", "--tempfile", state, "--timeout", "2s", "--container-metrics"}
	t0 := time.Unix(1764626880, 0)

	code, stdout, stderr := runContainers(t, t0, args...)
	if code != 0 || stderr != "" {
		t.Fatalf("run 1: code %d, stderr %q", code, stderr)
	}
	// first run: no rates, only the memory working set and the limits (2
	// online CPUs; the hierarchical limit is 2^63-4096: none); nonet has
	// no network. Each container once, under its lowest container port.
	want := []string{
		"gostats.nonet-8080.container_cpu.limit\t200.000000\t1764626880",
		"gostats.nonet-8080.container_memory.usage\t18325504.000000\t1764626880",
		"gostats.web-8080.container_cpu.limit\t200.000000\t1764626880",
		"gostats.web-8080.container_memory.usage\t35491840.000000\t1764626880",
		"gostats_scrape.containers.errors\t0.000000\t1764626880",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("run 1:\n got %q\nwant %q", got, want)
	}

	code, stdout, stderr = runContainers(t, t0.Add(time.Minute), args...)
	if code != 0 || stderr != "" {
		t.Fatalf("run 2: code %d, stderr %q", code, stderr)
	}
	// web: 1505534199 ns of CPU over 3.114731105 s between the two read
	// times is 48.335928 % of one vCPU; eth0 and the disk did not move;
	// nonet's answer is the same sample again: no time passed, no rates.
	want = []string{
		"gostats.nonet-8080.container_cpu.limit\t200.000000\t1764626940",
		"gostats.nonet-8080.container_memory.usage\t18325504.000000\t1764626940",
		"gostats.web-8080.container_cpu.limit\t200.000000\t1764626940",
		"gostats.web-8080.container_cpu.usage\t48.335928\t1764626940",
		"gostats.web-8080.container_disk.read_bytes\t0.000000\t1764626940",
		"gostats.web-8080.container_disk.write_bytes\t0.000000\t1764626940",
		"gostats.web-8080.container_memory.usage\t35225600.000000\t1764626940",
		"gostats.web-8080.container_network.rx_bytes\t0.000000\t1764626940",
		"gostats.web-8080.container_network.tx_bytes\t0.000000\t1764626940",
		"gostats_scrape.containers.errors\t0.000000\t1764626940",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("run 2:\n got %q\nwant %q", got, want)
	}
	if strings.Contains(stdout, "web-9090.container_") {
		t.Errorf("container metrics under the higher port too:\n%s", stdout)
	}
	b, _ := os.ReadFile(state)
	if !strings.Contains(string(b), `"containers":{`) || !strings.Contains(string(b), `"version":1`) {
		t.Errorf("state: %s", b)
	}

	// --list ends each target line with the stats' status
	code, stdout, _ = runContainers(t, t0.Add(2*time.Minute), append(args, "--list")...)
	if code != 0 || strings.Count(stdout, "stats ok\n") != 3 {
		t.Errorf("--list: code %d\n%s", code, stdout)
	}
}

func sorted(s []string) []string { slices.Sort(s); return s }

func TestContainerMetricsFaults(t *testing.T) {
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json"}},
		{name: "boom", id: "b00b00b00b00b00b", ports: []uint16{8080}, fault: "500"},
		{name: "hang", id: "4a4a4a4a4a4a4a4a", ports: []uint16{8080}, fault: "hang"},
		{name: "garbage", id: "9a9a9a9a9a9a9a9a", ports: []uint16{8080}, fault: "garbage"},
		{name: "gone", id: "60e60e60e60e60e6", ports: []uint16{8080}, fault: "404"},
	}}
	host := startFakeDocker(t, d)
	args := []string{"-H", host, "--key", "{name}", "--tempfile", filepath.Join(t.TempDir(), "state"), "--timeout", "1s", "--container-metrics"}
	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), args...)
	if code != 0 {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	want := []string{
		"gostats.web.container_cpu.limit\t200.000000\t1764626880",
		"gostats.web.container_memory.usage\t35491840.000000\t1764626880",
		"gostats_scrape.containers.errors\t4.000000\t1764626880",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	// the scrapes are not touched by the stats' faults
	for _, name := range []string{"web", "boom", "hang", "garbage", "gone"} {
		if !strings.Contains(stdout, "gostats."+name+".runtime.goroutine_num\t7.000000") {
			t.Errorf("no scrape of %s:\n%s", name, stdout)
		}
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 warnings, one a container:\n%s", stderr)
	}
	for _, w := range []string{
		"warning: container metrics of container boom b00b00b00b00: Error response from daemon: cgroup read failed",
		"warning: container metrics of container hang 4a4a4a4a4a4a: no stats answer in time",
		"warning: container metrics of container garbage 9a9a9a9a9a9a: decoding docker stats: unexpected EOF",
		"warning: container metrics of container gone 60e60e60e60e: Error response from daemon: No such container: 60e60e60e60e60e6",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("no %q in\n%s", w, stderr)
		}
	}
}

func TestContainerMetricsNoStatsEndpoint(t *testing.T) {
	d := &fakeDocker{noStats: true, containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080}},
		{name: "nonet", id: idNoNet, ports: []uint16{8080}},
	}}
	host := startFakeDocker(t, d)
	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), "-H", host, "--key", "{name}", "--tempfile", filepath.Join(t.TempDir(), "state"), "--container-metrics")
	if code != 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "warning: no container metrics: the stats of all 2 containers failed") {
		t.Errorf("code %d, want one warning:\n%s", code, stderr)
	}
	if got := containerLinesOf(stdout); !slices.Equal(got, []string{"gostats_scrape.containers.errors\t2.000000\t1764626880"}) {
		t.Errorf("got %q", got)
	}
}

// Without the flag, nothing changes: the output with it, less its
// container lines, is the output without it; and so are the meta graphs.
func TestContainerMetricsOff(t *testing.T) {
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080, 9090}, stats: []string{"docker_cpus_half_1.json"}},
	}}
	host := startFakeDocker(t, d)
	now := time.Unix(1764626880, 0)
	dir := t.TempDir()
	code, off, stderrOff := runContainers(t, now, "-H", host, "--tempfile", filepath.Join(dir, "off"))
	_, on, stderrOn := runContainers(t, now, "-H", host, "--tempfile", filepath.Join(dir, "on"), "--container-metrics")
	if code != 0 || stderrOff != "" || stderrOn != "" {
		t.Fatalf("code %d, stderr %q, %q", code, stderrOff, stderrOn)
	}
	stripped := slices.DeleteFunc(strings.SplitAfter(on, "\n"), func(l string) bool {
		return strings.Contains(l, ".container_") || strings.Contains(l, "_scrape.containers.")
	})
	if strings.Join(stripped, "") != dropRunTime(off) && dropRunTime(strings.Join(stripped, "")) != dropRunTime(off) {
		t.Errorf("without the flag:\n%s\nwith it, less the container lines:\n%s", off, strings.Join(stripped, ""))
	}
	if strings.Contains(off, "container") {
		t.Errorf("container lines without the flag:\n%s", off)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "off"))
	if strings.Contains(string(b), "containers") {
		t.Errorf("state without the flag: %s", b)
	}

	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "1")
	_, metaOff, _ := runContainers(t, now, "-H", host)
	_, metaOn, _ := runContainers(t, now, "-H", host, "--container-metrics")
	if strings.Contains(metaOff, "container") {
		t.Errorf("meta without the flag: %s", metaOff)
	}
	var g struct {
		Graphs map[string]struct {
			Label, Unit string
			Metrics     []struct{ Name string }
		}
	}
	if err := json.Unmarshal([]byte(strings.TrimPrefix(metaOn, "# mackerel-agent-plugin\n")), &g); err != nil {
		t.Fatal(err)
	}
	for name, unit := range map[string]string{"gostats.#.container_cpu": "percentage", "gostats.#.container_memory": "bytes",
		"gostats.#.container_network": "bytes/sec", "gostats.#.container_disk": "bytes/sec", "gostats_scrape.containers": "integer"} {
		if g.Graphs[name].Unit != unit {
			t.Errorf("meta graph %s: %+v", name, g.Graphs[name])
		}
	}
}

// dropRunTime drops the run's wall time line, which differs between runs.
func dropRunTime(s string) string {
	lines := strings.SplitAfter(s, "\n")
	return strings.Join(slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, "_scrape.run.seconds") }), "")
}

func TestContainerMetricsGraphs(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--graphs", "container_cpu"}, 2, `--graphs "container_cpu": graph "container_cpu" only with --container-metrics`},
		{[]string{"--graphs", "runtime,memory", "--container-metrics"}, 2, `--container-metrics: --graphs "runtime,memory" names no container graph (container_cpu,container_memory,container_network,container_disk)`},
		{[]string{"--graphs", "runtime,container_disk", "--container-metrics", "--version"}, 0, ""},
	} {
		code, _, stderr := runContainers(t, time.Unix(0, 0), c.args...)
		if code != c.code || stderr != "" && stderr != pluginName+": "+c.msg+"\n" || c.msg != "" && stderr == "" {
			t.Errorf("%q: code %d, stderr %q", c.args, code, stderr)
		}
	}
}

// With --source task-metadata, one /task/stats a run answers for every
// container; a container it has no entry for costs that container only.
func TestContainerMetricsTaskMetadata(t *testing.T) {
	ids := []string{
		"1111aaaa2222bbbb3333cccc4444dddd5555eeee6666ffff7777aaaa8888bbbb", // task_stats_v2_bridge.json: nginx
		"2222bbbb3333cccc4444dddd5555eeee6666ffff7777aaaa8888bbbb9999cccc", // sidecar
		"3333cccc4444dddd5555eeee6666ffff7777aaaa8888bbbb9999cccc0000dddd", // not in it
	}
	var containers []map[string]any
	for i, name := range []string{"nginx", "sidecar", "ghost"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, `{"goroutine_num": 7}`)
		}))
		t.Cleanup(srv.Close)
		_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		containers = append(containers, map[string]any{"DockerId": ids[i], "Name": name, "DockerName": "ecs-web-2-" + name,
			"KnownStatus": "RUNNING", "Type": "NORMAL", "Ports": []map[string]any{{"ContainerPort": p, "Protocol": "tcp", "HostPort": p}},
			"Networks": []map[string]any{{"NetworkMode": "bridge", "IPv4Addresses": []string{"127.0.0.1"}}}})
	}
	url, statsCalls := taskStatsStandIn(t, map[string]any{"TaskARN": "arn:aws:ecs:ap-northeast-1:123456789012:task/c/0123", "Family": "web", "Revision": "2",
		"Containers": containers}, "task_stats_v2_bridge.json")
	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), "--source", "task-metadata", "--task-metadata-url", url,
		"--tempfile", filepath.Join(t.TempDir(), "state"), "--container-metrics")
	if code != 0 || statsCalls.Load() != 1 {
		t.Fatalf("code %d, %d calls of /task/stats, stderr %q", code, statsCalls.Load(), stderr)
	}
	// nginx: 1.5 s of CPU over the 1 s from preread to read is 150 %; its
	// working set 50000000 less 10000000 inactive. sidecar: no precpu, no
	// CPU; its inactive file is above its usage: 0; the agent's network
	// rates. No limit of memory in either answer.
	want := []string{
		"gostats.nginx.container_cpu.limit\t200.000000\t1764626880",
		"gostats.nginx.container_cpu.usage\t150.000000\t1764626880",
		"gostats.nginx.container_memory.usage\t40000000.000000\t1764626880",
		"gostats.sidecar.container_cpu.limit\t200.000000\t1764626880",
		"gostats.sidecar.container_memory.usage\t0.000000\t1764626880",
		"gostats.sidecar.container_network.rx_bytes\t1.500000\t1764626880",
		"gostats.sidecar.container_network.tx_bytes\t2.500000\t1764626880",
		"gostats_scrape.containers.errors\t1.000000\t1764626880",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if w := "warning: container metrics of container ecs-web-2-ghost 3333cccc4444: " + url + "/task/stats has no entry for it\n"; stderr != w {
		t.Errorf("stderr %q, want %q", stderr, w)
	}
}

// taskStatsStandIn serves task as a task metadata endpoint's /task, and the
// /task/stats answer of internal/cstats/testdata/statsFile byte for byte. It
// returns the endpoint's URL and the count of /task/stats calls.
func taskStatsStandIn(t *testing.T, task map[string]any, statsFile string) (string, *atomic.Int64) {
	t.Helper()
	stats, err := os.ReadFile(filepath.Join("..", "internal", "cstats", "testdata", statsFile))
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int64
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/task":
			json.NewEncoder(w).Encode(task)
		case "/task/stats":
			calls.Add(1)
			w.Write(stats)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(md.Close)
	return md.URL, &calls
}
