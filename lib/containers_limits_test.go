package mpecsgostats

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
)

// Limits, shared network namespaces, sidecars, OTLP and the faults of the
// container metrics, against the Docker API stand-in (startFakeDocker in
// containers_test.go)
// and files laid out as the host's /proc and cgroup filesystem.

// statsSource is the Docker source of a run against the daemon at host,
// as the container meter asks it.
func statsSource(t *testing.T, host string) dockerSource {
	t.Helper()
	d := openDockerSource(options{DockerHost: host}, sourceEnv{timeout: 2 * time.Second}).(dockerSource)
	if d.engineErr != nil {
		t.Fatal(d.engineErr)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

const taskARN1 = "arn:aws:ecs:ap-northeast-1:123456789012:task/c/0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5"

// TestContainerLimitsInspect: the hard quota (NanoCpus, or CpuQuota over
// the default period) and the memory limit of HostConfig, never the CPU
// shares; one inspect a container, whatever the number of runs.
func TestContainerLimitsInspect(t *testing.T) {
	d := &fakeDocker{containers: []fakeContainer{
		{name: "half", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_2.json"},
			hostConfig: map[string]any{"NanoCpus": 500000000, "Memory": 268435456, "CpuShares": 512}},
		{name: "quota", id: idNoNet, ports: []uint16{8080}, stats: []string{"docker_network_none.json"},
			hostConfig: map[string]any{"CpuQuota": 150000, "CpuShares": 2048}},
		{name: "shares", id: "5ba5e55ba5e55ba5e55ba5e5", ports: []uint16{8080}, stats: []string{"docker_network_none.json"},
			hostConfig: map[string]any{"CpuShares": 1024}},
	}}
	host := startFakeDocker(t, d)
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"-H", host, "--key", "{name}", "--tempfile", state, "--timeout", "2s", "--container-metrics", "--graphs", "container_cpu,container_memory"}
	t0 := time.Unix(1764626880, 0)
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Minute)
		code, stdout, stderr := runContainers(t, now, args...)
		if code != 0 || stderr != "" {
			t.Fatalf("run %d: code %d, stderr %q", i+1, code, stderr)
		}
		got := slices.DeleteFunc(containerLinesOf(stdout), func(l string) bool { return !strings.Contains(l, ".limit\t") })
		ts := fmt.Sprint(now.Unix())
		// half: 0.5 CPU is 50 %, 256 MiB; quota: 150000 µs over the
		// kernel's 100000 is 150 %; shares: no quota, 2 online CPUs.
		want := []string{
			"gostats.half.container_cpu.limit\t50.000000\t" + ts,
			"gostats.half.container_memory.limit\t268435456.000000\t" + ts,
			"gostats.quota.container_cpu.limit\t150.000000\t" + ts,
			"gostats.shares.container_cpu.limit\t200.000000\t" + ts,
		}
		if got := sorted(got); !slices.Equal(got, want) {
			t.Errorf("run %d:\n got %q\nwant %q", i+1, got, want)
		}
	}
	for _, c := range d.containers {
		if n := d.inspects(c.id); n != 1 {
			t.Errorf("%s inspected %d times in 3 runs, want 1", c.name, n)
		}
	}
	b, _ := os.ReadFile(state)
	if !strings.Contains(string(b), `"spec":{"nano_cpus":500000000,"memory":268435456}`) || !strings.Contains(string(b), `"version":1`) {
		t.Errorf("state: %s", b)
	}
}

// hostFiles lays out files as a host's: root/<path> for each.
func hostFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for p, text := range files {
		path := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// netDev is a /proc/<pid>/net/dev with lo and eth0's bytes.
func netDev(rx, tx uint64) string {
	return "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:  987654     100    0    0    0     0          0         0   987654     100    0    0    0     0       0          0\n" +
		fmt.Sprintf("  eth0: %d    2000    0    0    0     0          0         0   %d    1500    0    0    0     0       0          0\n", rx, tx)
}

// TestContainerMeterAWSVPC: an awsvpc task as the ECS agent lays it out on
// EC2 (a pause container holding the network namespace, its containers
// joined to it, all under the cgroup parent /ecs/<task id>): the task's
// limits from the parent cgroup, a container memory limit at least the
// host's memory is none, the ENI's counters from the pause container's
// /proc/<pid>/net/dev once a run, the same under each container; the
// sidecar is measured, the pause container is not.
func TestContainerMeterAWSVPC(t *testing.T) {
	pause := "9a05e9a05e9a05e9a05e"
	taskLabels := func(name string) map[string]string {
		return map[string]string{labelTaskARN: taskARN1, labelContainerName: name}
	}
	joined := "container:" + pause
	d := &fakeDocker{containers: []fakeContainer{
		{name: "app", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_2.json"}, labels: taskLabels("app"),
			hostConfig: map[string]any{"CgroupParent": "/ecs/0c5b1f8e", "NetworkMode": joined}},
		{name: "envoy", id: idNoNet, stats: []string{"docker_network_none.json"}, labels: taskLabels("envoy"),
			hostConfig: map[string]any{"CgroupParent": "/ecs/0c5b1f8e", "NetworkMode": joined, "Memory": 2 << 30}},
		{name: "optout", id: "0970070970070970", stats: []string{"docker_network_none.json"},
			labels: map[string]string{labelTaskARN: taskARN1, labelScrape: "false"}},
		{name: "pause", id: pause, pid: 4242, labels: taskLabels(pauseContainerName), fault: "500"},
	}}
	host := startFakeDocker(t, d)
	root := t.TempDir()
	hostFiles(t, root, map[string]string{
		"cgroup/cpu/ecs/0c5b1f8e/cpu.cfs_quota_us":         "25000\n",
		"cgroup/cpu/ecs/0c5b1f8e/cpu.cfs_period_us":        "100000\n",
		"cgroup/memory/ecs/0c5b1f8e/memory.limit_in_bytes": "536870912\n",
		"meminfo":           "MemTotal:        1048576 kB\nMemFree:          524288 kB\n",
		"proc/4242/net/dev": netDev(1500000, 250000),
	})
	now := time.Unix(1764626880, 0)
	cm := &containerMeter{statser: statsSource(t, host), concurrency: 4,
		host: hostPaths{proc: filepath.Join(root, "proc"), cgroup: filepath.Join(root, "cgroup"), meminfo: filepath.Join(root, "meminfo")},
		now:  func() time.Time { return now }, sidecars: true}
	targets := []keyed{{target: target{ContainerID: idCPUs, ContainerName: "app", TaskARN: taskARN1, PrivatePort: 8080}, key: "app"}}

	m := cm.measure(t.Context(), targets)
	if len(m.warnings) != 0 || m.errors != 0 {
		t.Fatalf("run 1: warnings %q, %d errors", m.warnings, m.errors)
	}
	if len(m.containers) != 2 || m.containers[0].id != idCPUs || m.containers[1].sidecar == nil || m.containers[1].name != "envoy" {
		t.Fatalf("run 1: containers %+v, want app, then the sidecar envoy", m.containers)
	}
	for _, c := range m.containers {
		// 25000 µs over 100000 is 25 %; envoy's 2 GiB is over the host's
		// 1 GiB: the parent's 512 MiB
		if c.limits.CPU == nil || *c.limits.CPU != 25 || c.limits.Memory == nil || *c.limits.Memory != 512<<20 {
			t.Errorf("run 1: %s limits %v %v, want 25 %% and 512 MiB", c.name, c.limits.CPU, c.limits.Memory)
		}
		if c.values.NetRx != nil || c.counters.NetRx == nil || *c.counters.NetRx != 1500000 || *c.counters.NetTx != 250000 {
			t.Errorf("run 1: %s network rate %v, counters %v %v: want no rate, eth0's counters", c.name, c.values.NetRx, c.counters.NetRx, c.counters.NetTx)
		}
	}

	// 10 s later eth0 moved 100000 bytes in and 50000 out: 10000 and 5000
	// bytes/s for each container, not their sum
	cm.prev = containerSamples(m, cm.prev)
	cm.statser = statsSource(t, host) // the next run's
	now = now.Add(10 * time.Second)
	hostFiles(t, root, map[string]string{"proc/4242/net/dev": netDev(1600000, 300000)})
	m = cm.measure(t.Context(), targets)
	if len(m.warnings) != 0 || m.errors != 0 {
		t.Fatalf("run 2: warnings %q, %d errors", m.warnings, m.errors)
	}
	for _, c := range m.containers {
		if c.values.NetRx == nil || *c.values.NetRx != 10000 || *c.values.NetTx != 5000 {
			t.Errorf("run 2: %s network %v %v, want 10000 and 5000", c.name, c.values.NetRx, c.values.NetTx)
		}
	}
	if d.inspects(pause) != 2 || d.inspects(idCPUs) != 1 || d.inspects(idNoNet) != 1 || d.statsCalls(pause) != 0 {
		t.Errorf("inspects %d, %d, %d, pause stats calls %d: want the pause container inspected once a run, never asked its stats, the others inspected once",
			d.inspects(pause), d.inspects(idCPUs), d.inspects(idNoNet), d.statsCalls(pause))
	}

	// /proc without the pause container's pid (a plugin in a container
	// without the host's /proc): no network for the task, said once
	cm.prev = containerSamples(m, cm.prev)
	os.RemoveAll(filepath.Join(root, "proc"))
	delete(cm.prev, pause)
	for run := 3; run <= 4; run++ {
		cm.statser = statsSource(t, host)
		now = now.Add(10 * time.Second)
		m = cm.measure(t.Context(), targets)
		cm.prev = containerSamples(m, cm.prev)
		for _, c := range m.containers {
			if c.err != nil || c.values.NetRx != nil || c.counters.NetRx != nil || c.values.Memory == nil {
				t.Errorf("run %d: %s err %v, network %v %v, memory %v: want no network, the rest", run, c.name, c.err, c.values.NetRx, c.counters.NetRx, c.values.Memory)
			}
		}
		if want := map[int]int{3: 1, 4: 0}[run]; len(m.warnings) != want || want == 1 && !strings.Contains(m.warnings[0], "no container network of the containers in the network namespace of container 9a05e9a05e9a: reading network counters") {
			t.Errorf("run %d: warnings %q, want %d", run, m.warnings, want)
		}
	}
}

// TestContainerMetricsFaultMatrix: each fault of the daemon costs the
// containers concerned only, within --timeout: stats refused, hung,
// garbage, gone between the list and the stats, inspect refused (the
// limits fall back, with a warning) or hung, the pause container's inspect
// hung (no network for its task), the sidecars' list refused.
func TestContainerMetricsFaultMatrix(t *testing.T) {
	pause := "9a05e9a05e9a05e9a05e"
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json"}, hostConfig: map[string]any{"NanoCpus": 250000000}},
		{name: "boom", id: "b00b00b00b00b00b", ports: []uint16{8080}, fault: "500"},
		{name: "hang", id: "4a4a4a4a4a4a4a4a", ports: []uint16{8080}, fault: "hang"},
		{name: "garbage", id: "9a9a9a9a9a9a9a9a", ports: []uint16{8080}, fault: "garbage"},
		{name: "gone", id: "60e60e60e60e60e6", ports: []uint16{8080}, fault: "404"},
		{name: "noinspect", id: "1e51ec71e51ec71e", ports: []uint16{8080}, stats: []string{"docker_network_none.json"}, inspectFault: "500"},
		{name: "inspecthang", id: "1a1a1a1a1a1a1a1a", ports: []uint16{8080}, stats: []string{"docker_network_none.json"}, inspectFault: "hang"},
		{name: "awsvpc", id: idNoNet, ports: []uint16{8080}, stats: []string{"docker_network_none.json"},
			hostConfig: map[string]any{"NetworkMode": "container:" + pause, "Memory": 64 << 20}},
		{name: "pause", id: pause, labels: map[string]string{labelTaskARN: taskARN1, labelContainerName: pauseContainerName}, inspectFault: "hang"},
	}}
	host := startFakeDocker(t, d)
	const timeout = time.Second
	args := []string{"-H", host, "--key", "{name}", "--tempfile", filepath.Join(t.TempDir(), "state"), "--timeout", timeout.String(), "--container-metrics"}
	start := time.Now()
	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), args...)
	if elapsed := time.Since(start); elapsed > timeout+500*time.Millisecond {
		t.Errorf("the run took %s with --timeout %s", elapsed, timeout)
	}
	if code != 0 {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	want := []string{
		"gostats.awsvpc.container_cpu.limit\t200.000000\t1764626880",
		"gostats.awsvpc.container_memory.limit\t67108864.000000\t1764626880",
		"gostats.awsvpc.container_memory.usage\t18325504.000000\t1764626880",
		"gostats.inspecthang.container_cpu.limit\t200.000000\t1764626880", // the inspect costs its limits only
		"gostats.inspecthang.container_memory.usage\t18325504.000000\t1764626880",
		"gostats.noinspect.container_cpu.limit\t200.000000\t1764626880",
		"gostats.noinspect.container_memory.usage\t18325504.000000\t1764626880",
		"gostats.web.container_cpu.limit\t25.000000\t1764626880",
		"gostats.web.container_memory.usage\t35491840.000000\t1764626880",
		"gostats_scrape.containers.errors\t4.000000\t1764626880",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	for _, c := range d.containers[:8] {
		if !strings.Contains(stdout, "gostats."+c.name+".runtime.goroutine_num\t7.000000") {
			t.Errorf("no scrape of %s:\n%s", c.name, stdout)
		}
	}
	for _, w := range []string{
		"warning: container metrics of container boom b00b00b00b00: Error response from daemon: cgroup read failed\n",
		"warning: container metrics of container hang 4a4a4a4a4a4a: no stats answer in time",
		"warning: container metrics of container garbage 9a9a9a9a9a9a: decoding docker stats: unexpected EOF\n",
		"warning: container metrics of container gone 60e60e60e60e: Error response from daemon: No such container: 60e60e60e60e60e6\n",
		"warning: container limits of container inspecthang 1a1a1a1a1a1a: the host's: cannot inspect it: no stats answer in time",
		"warning: container limits of container noinspect 1e51ec71e51e: the host's: cannot inspect it: Error response from daemon: inspect failed\n",
		"warning: no container network of the containers in the network namespace of container 9a05e9a05e9a: no stats answer in time",
	} {
		if !strings.Contains(stderr, w) {
			t.Errorf("no %q in\n%s", w, stderr)
		}
	}
	if n := strings.Count(stderr, "\n"); n != 7 {
		t.Errorf("%d warnings, want 7:\n%s", n, stderr)
	}
}

// TestContainerMetricsSidecarListFails: a refused list of the tasks'
// containers costs the sidecars only; and it is asked only for an output
// that sends the sidecars (OTLP): a run with the Mackerel output alone lists
// the containers once, for discovery.
func TestContainerMetricsSidecarListFails(t *testing.T) {
	var lists atomic.Int64
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_1.json"}, labels: map[string]string{labelTaskARN: taskARN1}},
	}}
	host := startFakeDocker(t, d)
	// a proxy that counts the lists, and answers the sidecars' list with a 500
	u := strings.TrimPrefix(host, "tcp://")
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/containers/json") {
			lists.Add(1)
			if strings.Contains(r.URL.RawQuery, labelTaskARN) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprint(w, `{"message":"list failed"}`)
				return
			}
		}
		req, _ := http.NewRequestWithContext(r.Context(), r.Method, "http://"+u+r.URL.RequestURI(), nil)
		resp, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(proxy.Close)
	proxyHost := "tcp://" + proxy.Listener.Addr().String()

	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), "-H", proxyHost, "--key", "{name}",
		"--tempfile", filepath.Join(t.TempDir(), "state"), "--container-metrics", "--graphs", "container_memory")
	if code != 0 || stderr != "" || lists.Load() != 1 {
		t.Errorf("the Mackerel output alone: code %d, stderr %q, %d lists; want 0, none, 1", code, stderr, lists.Load())
	}
	if !strings.Contains(stdout, "gostats.web.container_memory.usage\t35491840.000000") {
		t.Errorf("stdout:\n%s", stdout)
	}

	cm := &containerMeter{statser: statsSource(t, proxyHost), concurrency: 4,
		host: hostPaths{}, now: func() time.Time { return time.Unix(1764626880, 0) }, sidecars: true}
	m := cm.measure(t.Context(), []keyed{{target: target{ContainerID: idCPUs, ContainerName: "web", TaskARN: taskARN1, PrivatePort: 8080}, key: "web"}})
	want := []string{"no sidecar metrics: cannot list the tasks' containers: Error response from daemon: list failed"}
	if !slices.Equal(m.warnings, want) || m.errors != 0 || len(m.containers) != 1 || m.containers[0].values.Memory == nil {
		t.Errorf("with the sidecars asked for: warnings %q, errors %d, containers %+v; want %q and web measured", m.warnings, m.errors, m.containers, want)
	}
}

// TestContainerMetricsTaskMetadataAWSVPC: the task's and the containers'
// Limits of task metadata (a container's Limits.CPU is CPU shares: no
// limit), and the ENI's rates once for the task, from the entry with the
// smallest id, under each container.
func TestContainerMetricsTaskMetadataAWSVPC(t *testing.T) {
	const (
		envoy = "0a1c5e2f9b3d4c6a8e7f0b1a2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d" // task_stats_v1_awsvpc.json
		app   = "5b0f3e1d7c9a2b4d6f8e0a1c3e5d7f9b1a3c5e7d9f0b2d4f6a8c0e2a4c6e8a0b"
		null  = "e7f3a9c1b5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9"
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"goroutine_num": 7}`) }))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	awsvpc := []map[string]any{{"NetworkMode": "awsvpc", "IPv4Addresses": []string{"10.0.1.5"}}}
	containers := []map[string]any{
		{"DockerId": app, "Name": "app", "DockerName": "ecs-orders-1-app", "KnownStatus": "RUNNING", "Type": "NORMAL",
			"Ports": []map[string]any{{"ContainerPort": p, "Protocol": "tcp", "HostPort": p}}, "Networks": awsvpc,
			"Limits": map[string]any{"CPU": 128, "Memory": 256}},
		{"DockerId": envoy, "Name": "envoy", "DockerName": "ecs-orders-1-envoy", "KnownStatus": "RUNNING", "Type": "NORMAL",
			"Networks": awsvpc, "Limits": map[string]any{"CPU": 0}, "StartedAt": "2024-05-01T09:00:00Z"},
		{"DockerId": null, "Name": "optout", "DockerName": "ecs-orders-1-optout", "KnownStatus": "RUNNING", "Type": "NORMAL",
			"Networks": awsvpc, "Labels": map[string]string{labelScrape: "false"}},
		{"DockerId": "pause", "Name": "~internal~ecs~pause", "KnownStatus": "RESOURCES_PROVISIONED", "Type": "CNI_PAUSE"},
	}
	url, _ := taskStatsStandIn(t, map[string]any{"TaskARN": taskARN1, "Family": "orders", "Revision": "1",
		"Limits": map[string]any{"CPU": 0.5, "Memory": 1024}, "Containers": containers}, "task_stats_v1_awsvpc.json")
	code, stdout, stderr := runContainers(t, time.Unix(1764626880, 0), "--source", "task-metadata", "--task-metadata-url", url,
		"--tempfile", filepath.Join(t.TempDir(), "state"), "--container-metrics", "--graphs", "container_cpu,container_memory,container_network")
	if code != 0 || stderr != "" {
		t.Fatalf("code %d, stderr %q", code, stderr)
	}
	// app: the task's 0.5 vCPU (its Limits.CPU 128 is shares) and its own
	// 256 MiB; the network is envoy's entry's rates (the smallest id), not
	// app's own 1234.5 and 678.25
	var got []string
	for _, l := range containerLinesOf(stdout) {
		if strings.Contains(l, ".limit\t") || strings.Contains(l, "container_network") {
			got = append(got, l)
		}
	}
	want := []string{
		"gostats.app.container_cpu.limit\t50.000000\t1764626880",
		"gostats.app.container_memory.limit\t268435456.000000\t1764626880",
		"gostats.app.container_network.rx_bytes\t1200.000000\t1764626880",
		"gostats.app.container_network.tx_bytes\t650.000000\t1764626880",
	}
	if got := sorted(got); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// TestContainerMetricsOTLP: the container series of a scraped container
// on its lowest-port target's resource, and a sidecar's on a resource of
// its own; the pause container and opted-out containers send none.
func TestContainerMetricsOTLP(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{})
	task := func(name string) map[string]string {
		return map[string]string{labelTaskARN: taskARN1, labelContainerName: name, labelFamily: "orders", labelRevision: "3"}
	}
	d := &fakeDocker{containers: []fakeContainer{
		{name: "ecs-orders-3-app", id: idCPUs, ports: []uint16{9090, 8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_2.json"},
			labels: task("app"), hostConfig: map[string]any{"NanoCpus": 500000000, "Memory": 268435456}},
		{name: "ecs-orders-3-envoy", id: idNoNet, stats: []string{"docker_network_none.json"}, labels: task("envoy")},
		{name: "ecs-orders-3-optout", id: "0970070970070970", stats: []string{"docker_network_none.json"},
			labels: map[string]string{labelTaskARN: taskARN1, labelScrape: "false"}},
		{name: "ecs-orders-3-internalecspause", id: "9a05e9a05e9a05e9a05e", labels: task(pauseContainerName)},
	}}
	host := startFakeDocker(t, d)
	agent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"ContainerInstanceArn": "arn:aws:ecs:ap-northeast-1:123456789012:container-instance/c/1"}`)
	}))
	t.Cleanup(agent.Close)
	statePath := filepath.Join(t.TempDir(), "state")
	args := []string{"-H", host, "--tempfile", statePath, "--timeout", "3s", "--container-metrics", "--output", "otlp",
		"--otlp-endpoint", col.Endpoint, "--otlp-insecure", "--ecs-agent-url", agent.URL}
	t0 := time.Unix(1764626880, 0)
	for i := range 2 {
		if code, _, stderr := runContainers(t, t0.Add(time.Duration(i)*time.Minute), args...); code != 0 || stderr != "" {
			t.Fatalf("run %d: code %d, stderr %q", i+1, code, stderr)
		}
	}
	// the scraped container is inspected once in its lifetime, for its
	// service identity and its limits alike (the state keeps both)
	if n := d.inspects(idCPUs); n != 1 {
		t.Errorf("app inspected %d times in 2 runs, want once", n)
	}
	// per run: the two targets' resources, then the containers' (app's and envoy's)
	got := col.WaitMetrics(t, 8, 10*time.Second)
	var app, envoy []otlpRow
	for _, rm := range got {
		attrs := map[string]string{}
		for _, kv := range rm.Resource.Attributes {
			attrs[kv.Key] = kv.Value.GetStringValue()
		}
		rows := otlpRows(rm)
		if !slices.ContainsFunc(rows, func(r otlpRow) bool { return strings.HasPrefix(r.metric, "container.") }) {
			continue
		}
		switch attrs["service.instance.id"] {
		case "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5/app:8080":
			app = rows
		case "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5/envoy":
			envoy = rows
			if attrs["container.id"] != idNoNet || attrs["service.name"] != "orders" || attrs["aws.ecs.task.revision"] != "3" {
				t.Errorf("envoy's resource %v", attrs)
			}
		default:
			t.Errorf("container series on resource %v", attrs)
		}
	}
	start := uint64(time.Unix(1700000000, 0).UnixNano())
	at := uint64(t0.Add(time.Minute).UnixNano())
	// app's second run: 4.78 s user and 0.09 s kernel; 1505534199 ns over
	// 3.114731105 s is 0.483359284717 CPUs; eth0 1112 bytes in; no disk I/O
	wantApp := []otlpRow{
		{"container.cpu.time", "s", "sum/monotonic", "cpu.mode=user", "4.78", start, at},
		{"container.cpu.time", "s", "sum/monotonic", "cpu.mode=system", "0.09", start, at},
		{"container.cpu.usage", "{cpu}", "gauge", "", "0.4833592847174523", 0, at},
		{"container.memory.usage", "By", "sum/updown", "", "35225600", start, at},
		{"container.memory.working_set", "By", "sum/updown", "", "35225600", start, at},
		{"container.network.io", "By", "sum/monotonic", "network.io.direction=receive", "1112", start, at},
		{"container.network.io", "By", "sum/monotonic", "network.io.direction=transmit", "0", start, at},
		{"container.disk.io", "By", "sum/monotonic", "disk.io.direction=read", "0", start, at},
		{"container.disk.io", "By", "sum/monotonic", "disk.io.direction=write", "0", start, at},
		{"ecs_gostats.container.cpu.limit", "{cpu}", "sum/updown", "", "0.5", start, at},
		{"ecs_gostats.container.memory.limit", "By", "sum/updown", "", "268435456", start, at},
	}
	if !slices.EqualFunc(app, wantApp, func(a, b otlpRow) bool { return a.String() == b.String() }) {
		diff := otlpRowsDiff(app, wantApp)
		t.Errorf("app's container series:\n%s", diff)
	}
	if len(envoy) == 0 || !slices.ContainsFunc(envoy, func(r otlpRow) bool { return r.metric == "container.memory.working_set" && r.value == "18325504" }) {
		t.Errorf("envoy's series %v", envoy)
	}
	var s state
	b, _ := os.ReadFile(statePath)
	if err := json.Unmarshal(b, &s); err != nil || len(s.Containers) != 2 {
		t.Errorf("state's containers %v (%v): want app and envoy", s.Containers, err)
	}
}

// TestContainerMetricsJoinedTarget: a container joined to the network
// namespace of a container that is measured itself reports that one's
// network; the holder is inspected once, as any container.
func TestContainerMetricsJoinedTarget(t *testing.T) {
	d := &fakeDocker{containers: []fakeContainer{
		{name: "web", id: idCPUs, ports: []uint16{8080}, stats: []string{"docker_cpus_half_1.json", "docker_cpus_half_2.json"}},
		{name: "joined", id: idNoNet, ports: []uint16{9090}, stats: []string{"docker_network_none.json"},
			hostConfig: map[string]any{"NetworkMode": "container:" + idCPUs}},
	}}
	host := startFakeDocker(t, d)
	args := []string{"-H", host, "--key", "{name}", "--tempfile", filepath.Join(t.TempDir(), "state"), "--container-metrics", "--graphs", "container_network"}
	t0 := time.Unix(1764626880, 0)
	var stdout string
	for i := range 2 {
		code, out, stderr := runContainers(t, t0.Add(time.Duration(i)*time.Minute), args...)
		if code != 0 || stderr != "" {
			t.Fatalf("run %d: code %d, stderr %q", i+1, code, stderr)
		}
		stdout = out
	}
	// web's eth0 did not move between its two answers (1112 bytes in):
	// 0 for both; the joined container's own answer has no network
	want := []string{
		"gostats.joined.container_network.rx_bytes\t0.000000\t1764626940",
		"gostats.joined.container_network.tx_bytes\t0.000000\t1764626940",
		"gostats.web.container_network.rx_bytes\t0.000000\t1764626940",
		"gostats.web.container_network.tx_bytes\t0.000000\t1764626940",
		"gostats_scrape.containers.errors\t0.000000\t1764626940",
	}
	if got := sorted(containerLinesOf(stdout)); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if d.inspects(idCPUs) != 1 || d.inspects(idNoNet) != 1 {
		t.Errorf("inspects %d, %d, want one each", d.inspects(idCPUs), d.inspects(idNoNet))
	}
}
