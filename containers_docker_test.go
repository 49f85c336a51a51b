package main

// Container metrics (--container-metrics) of real containers: the built
// plugin, run twice over ECS-like tasks that burn a known share of a CPU,
// hold touched memory or move bytes, compared with what the kernel's own
// files (the containers' cgroup files, /proc/<pid>/net/dev) say over the
// same interval.

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
)

// The tolerances against the kernel's own numbers.
const (
	cpuTolerance     = 0.10    // relative
	memoryTolerance  = 4 << 20 // bytes
	networkTolerance = 0.05    // relative, plus networkSlack
	networkSlack     = 64 << 10
)

// kernelReading is what the kernel says of a container at a time: its
// cgroup's CPU time and working set, and its network namespace's bytes.
type kernelReading struct {
	at         time.Time
	cpu        uint64 // ns, cpuacct.usage
	workingSet uint64 // memory.usage_in_bytes less total_inactive_file
	rx, tx     uint64 // every interface but lo
}

// containerPid is the pid of a container's main process.
func containerPid(t *testing.T, id string) int {
	t.Helper()
	out, err := docker(context.Background(), "inspect", "-f", "{{.State.Pid}}", id)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || pid <= 0 {
		t.Fatalf("pid of %s: %q", id, out)
	}
	return pid
}

// cgroupDir is the directory of the cgroup v1 controller of process pid.
func cgroupDir(t *testing.T, pid int, controller string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if c == controller {
				return filepath.Join("/sys/fs/cgroup", controller, f[2])
			}
		}
	}
	t.Fatalf("process %d has no %s cgroup:\n%s", pid, controller, b)
	return ""
}

func readUint(t *testing.T, path string) uint64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return v
}

// readKernel reads the kernel's numbers of the container whose main
// process is pid, the network's of netPid's namespace.
func readKernel(t *testing.T, pid, netPid int) kernelReading {
	t.Helper()
	k := kernelReading{at: time.Now()}
	k.cpu = readUint(t, filepath.Join(cgroupDir(t, pid, "cpuacct"), "cpuacct.usage"))
	mem := cgroupDir(t, pid, "memory")
	usage := readUint(t, filepath.Join(mem, "memory.usage_in_bytes"))
	stat, err := os.ReadFile(filepath.Join(mem, "memory.stat"))
	if err != nil {
		t.Fatal(err)
	}
	var inactive uint64
	sc := bufio.NewScanner(strings.NewReader(string(stat)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "total_inactive_file "); ok {
			inactive, _ = strconv.ParseUint(v, 10, 64)
		}
	}
	k.workingSet = usage - min(usage, inactive)
	dev, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", netPid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(dev), "\n")[2:] {
		name, rest, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		rx, _ := strconv.ParseUint(f[0], 10, 64)
		tx, _ := strconv.ParseUint(f[8], 10, 64)
		k.rx += rx
		k.tx += tx
	}
	return k
}

// sampleTimes are the read times of the samples the plugin kept, by
// container id.
func sampleTimes(t *testing.T, tempfile string) map[string]time.Time {
	t.Helper()
	b, err := os.ReadFile(tempfile)
	if err != nil {
		t.Fatal(err)
	}
	var s struct {
		Containers map[string]struct {
			T time.Time `json:"t"`
		} `json:"containers"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for id, c := range s.Containers {
		out[id] = c.T
	}
	return out
}

// ecsCgroupParent makes the cgroup parent /ecs/<taskID> with the task's
// limits, as the ECS agent does before it starts the task's containers:
// a CPU quota of quota µs in 100000 and memory bytes. It is removed, with
// what Docker made under /ecs, when the test ends: register it before the
// containers, whose removal comes first.
func ecsCgroupParent(t *testing.T, taskID string, quota int64, memory uint64) string {
	t.Helper()
	const root = "/sys/fs/cgroup"
	ecsExisted := map[string]bool{}
	controllers, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range controllers {
		if _, err := os.Stat(filepath.Join(root, c.Name(), "ecs")); err == nil {
			ecsExisted[c.Name()] = true
		}
	}
	t.Cleanup(func() {
		for _, c := range controllers {
			dir := filepath.Join(root, c.Name(), "ecs")
			os.Remove(filepath.Join(dir, taskID))
			if !ecsExisted[c.Name()] {
				os.Remove(dir) // only when empty: another run's task may be under it
			}
		}
	})
	for file, value := range map[string]string{
		"cpu/ecs/" + taskID + "/cpu.cfs_quota_us":         strconv.FormatInt(quota, 10),
		"memory/ecs/" + taskID + "/memory.limit_in_bytes": strconv.FormatUint(memory, 10),
	} {
		path := filepath.Join(root, file)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			testenv.SkipUnlessCI(t, fmt.Sprintf("cannot make the cgroup parent (a writable cgroup v1 filesystem needed): %v", err))
		}
		if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
			t.Fatalf("setting the task's limit: %v", err)
		}
	}
	return "/ecs/" + taskID
}

// vethInto adds a veth pair outside Docker, one end in the network
// namespace of process pid with address 10.213.N.2/30, the host's end with
// .1, as CNI gives an awsvpc task its ENI; it returns the task's address.
// The pair goes with the namespace, or when the test ends.
func vethInto(t *testing.T, pid int) string {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		testenv.SkipUnlessCI(t, "no ip (iproute2) to add the task's interface")
	}
	b := make([]byte, 3)
	rand.Read(b)
	host, peer := "cmh"+hex.EncodeToString(b), "cmc"+hex.EncodeToString(b)
	net := fmt.Sprintf("10.213.%d", b[0])
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
	t.Cleanup(func() { exec.Command("ip", "link", "del", host).Run() })
	run("ip", "link", "set", peer, "netns", strconv.Itoa(pid))
	ns := []string{"nsenter", "-t", strconv.Itoa(pid), "-n"}
	run(append(ns, "ip", "addr", "add", net+".2/30", "dev", peer)...)
	run(append(ns, "ip", "link", "set", peer, "up")...)
	run("ip", "addr", "add", net+".1/30", "dev", host)
	run("ip", "link", "set", host, "up")
	return net + ".2"
}

// fetchBytes GETs n bytes of the app at addr and checks they all came.
func fetchBytes(t *testing.T, addr string, n int) {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://%s/statsapp/bytes?n=%d", addr, n))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.Copy(io.Discard, resp.Body)
	if err != nil || got != int64(n) {
		t.Fatalf("GET %d bytes of %s: %d, %v", n, addr, got, err)
	}
}

func within(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance }

// TestContainerMetricsDocker: one pair of runs, 2 s and more apart, over a
// cluster of tasks that each show one thing: a burner under a hard quota
// (--cpus 0.5); a burner under the cgroup parent /ecs/<task id> holding
// the task's quota and memory limit; a container holding 96 MiB of touched
// memory; a bridge task sending a known number of bytes; an awsvpc task
// (a pause container with --network none and a veth pair added outside
// Docker, two containers) sending a known number of bytes, counted once
// per container, not summed; a task whose Go endpoint hangs.
func TestContainerMetricsDocker(t *testing.T) {
	needDocker(t)
	if os.Geteuid() != 0 {
		testenv.SkipUnlessCI(t, "reading and making cgroups and veth pairs needs root")
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		testenv.SkipUnlessCI(t, "the host runs cgroup v2; this test reads and makes cgroup v1 files")
	}
	id := make([]byte, 16)
	rand.Read(id)
	parentTask := hex.EncodeToString(id) // a task of this run's own: runs at once do not share its cgroup
	parent := ecsCgroupParent(t, parentTask, 25000, 192<<20)
	c := ownCluster(t, "cm")
	run := func(name string, args ...string) task {
		return mustRunTask(t, c, "cm", append([]string{"--container-name", name}, args...)...)
	}
	burn := run("burn", "--env", "STATSAPP_BURN=1", "--", "--cpus", "0.5")
	capped := run("capped", "--task-id", parentTask, "--env", "STATSAPP_BURN=1", "--", "--cgroup-parent", parent)
	memory := run("memory", "--env", "STATSAPP_HOLD_MIB=96", "--", "--memory", "256m")
	bridge := run("net")
	run("hang", "--mode", "hang")

	// the awsvpc task: orders on 8080, sidecar on 9090
	const awsvpcTask = "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5"
	pause := run("~internal~ecs~pause", "--task-id", awsvpcTask, "--publish", "none", "--", "--network", "none", "--entrypoint", "/pause")
	pausePid := containerPid(t, pause.id)
	addr := vethInto(t, pausePid)
	orders := run("orders", "--task-id", awsvpcTask, "--publish", "none", "--", "--network", "container:"+pause.id)
	sidecar := run("sidecar", "--task-id", awsvpcTask, "--publish", "none", "--env", "STATSAPP_ADDR=:9090", "--", "--network", "container:"+pause.id)
	for _, u := range []string{"http://" + addr + ":8080/stats", "http://" + addr + ":9090/stats"} {
		if err := waitURL(u); err != nil {
			t.Fatal(err)
		}
	}
	for _, tk := range []task{burn, capped, memory, bridge} {
		if err := waitAnswers(tk); err != nil {
			t.Fatal(err)
		}
	}
	agent := ordersAgent(t, addr, map[string]string{"orders": orders.id, "sidecar": sidecar.id}, addr, map[string]string{"orders": strings.Repeat("0", 64)})

	tempfile := filepath.Join(t.TempDir(), "state")
	const timeout = 4 * time.Second
	args := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + c, "--ecs-agent-url", agent.URL,
		"--key", "{container}-{container_port}", "--timeout", timeout.String(), "--tempfile", tempfile, "--container-metrics"}
	pids := map[string]int{}
	for _, tk := range []task{burn, capped, memory, bridge, orders, sidecar} {
		pids[tk.id] = containerPid(t, tk.id)
	}
	netPid := func(id string) int {
		if id == orders.id || id == sidecar.id {
			return pausePid
		}
		return pids[id]
	}
	before := map[string]kernelReading{}
	for id, pid := range pids {
		before[id] = readKernel(t, pid, netPid(id))
	}

	r1 := runPlugin(t, nil, args...)
	if r1.code != 0 {
		t.Fatalf("run 1: exit %d, stderr:\n%s", r1.code, r1.stderr)
	}
	start := time.Now()
	inner0 := map[string]kernelReading{}
	for id, pid := range pids {
		inner0[id] = readKernel(t, pid, netPid(id))
	}
	times1 := sampleTimes(t, tempfile)
	const bridgeBytes, awsvpcBytes = 6 << 20, 5 << 20
	fetchBytes(t, "127.0.0.1:"+bridge.port, bridgeBytes)
	fetchBytes(t, addr+":8080", awsvpcBytes)
	time.Sleep(3*time.Second - time.Since(start))
	inner1 := map[string]kernelReading{}
	for id, pid := range pids {
		inner1[id] = readKernel(t, pid, netPid(id))
	}
	r2 := runPlugin(t, nil, args...)
	if r2.code != 0 {
		t.Fatalf("run 2: exit %d, stderr:\n%s", r2.code, r2.stderr)
	}
	after := map[string]kernelReading{}
	for id, pid := range pids {
		after[id] = readKernel(t, pid, netPid(id))
	}
	times2 := sampleTimes(t, tempfile)
	m := parseMetrics(t, r2.stdout)
	if r2.elapsed > timeout+runMargin {
		t.Errorf("run 2 took %s with --timeout %s", r2.elapsed, timeout)
	}
	for _, line := range strings.Split(strings.TrimSpace(r2.stderr), "\n") {
		if line != "" && !strings.Contains(line, "hang") {
			t.Errorf("run 2 warning: %s", line)
		}
	}
	metric := func(key, name string) float64 {
		t.Helper()
		v, ok := m["gostats."+key+"."+name]
		if !ok {
			t.Errorf("no %s of %s in\n%s", name, key, r2.stdout)
		}
		return v
	}
	// CPU in percent of one CPU over the test's intervals around the
	// plugin's (from before its first run to after its second) and within it
	// (from after the first to before the second): under a steady load both
	// are the plugin's; on a busy host the plugin's is between them.
	percent := func(a, b kernelReading) float64 {
		return float64(b.cpu-a.cpu) / float64(b.at.Sub(a.at).Nanoseconds()) * 100
	}
	checkCPU := func(t *testing.T, key, id string, quota float64) {
		t.Helper()
		got := metric(key, "container_cpu.usage")
		outer, inner := percent(before[id], after[id]), percent(inner0[id], inner1[id])
		lo, hi := min(outer, inner)*(1-cpuTolerance), max(outer, inner)*(1+cpuTolerance)
		if got < lo || got > hi {
			t.Errorf("CPU %.2f %%, the kernel's %.2f %% around the plugin's interval and %.2f %% within it", got, outer, inner)
		}
		if outer > quota*1.1 || inner > quota*1.1 { // a window of a few CFS periods can take one more period's quota
			t.Errorf("the kernel's CPU %.2f %% and %.2f %%: not the quota's %.0f %%", outer, inner, quota)
		}
		t.Logf("CPU %.2f %%, the kernel's %.2f %% around the plugin's interval, %.2f %% within it", got, outer, inner)
	}

	t.Run("every metric", func(t *testing.T) {
		for _, name := range containerMetricNames { // the examples' (containers_examples_test.go)
			metric("memory-8080", name)
		}
		// docs/container-metrics.md's budget: 17 of the handler and 8 of the container
		n := 0
		for k := range m {
			if strings.HasPrefix(k, "gostats.memory-8080.") {
				n++
			}
		}
		if n != 25 {
			t.Errorf("%d metrics of a target, want 25:\n%s", n, r2.stdout)
		}
	})
	t.Run("hard quota", func(t *testing.T) {
		checkCPU(t, "burn-8080", burn.id, 50)
		if got := metric("burn-8080", "container_cpu.limit"); got != 50 {
			t.Errorf("CPU limit %v, want 50 (--cpus 0.5)", got)
		}
	})
	t.Run("task's cgroup parent", func(t *testing.T) {
		checkCPU(t, "capped-8080", capped.id, 25)
		if l := metric("capped-8080", "container_cpu.limit"); l != 25 {
			t.Errorf("CPU limit %v, want the task's 25", l)
		}
		if l := metric("capped-8080", "container_memory.limit"); l != 192<<20 {
			t.Errorf("memory limit %v, want the task's %d", l, 192<<20)
		}
	})
	t.Run("memory", func(t *testing.T) {
		got, want := metric("memory-8080", "container_memory.usage"), float64(after[memory.id].workingSet)
		if !within(got, want, memoryTolerance) || got < 96<<20 {
			t.Errorf("memory %.0f, the kernel's %.0f (96 MiB held)", got, want)
		}
		if l := metric("memory-8080", "container_memory.limit"); l != 256<<20 {
			t.Errorf("memory limit %v, want 256 MiB", l)
		}
		t.Logf("memory %.0f, the kernel's %.0f: %+.0f bytes", got, want, got-want)
	})
	network := func(t *testing.T, key, id, holder string, moved int) {
		t.Helper()
		dt := times2[holder].Sub(times1[holder]).Seconds()
		for _, dir := range []struct {
			name   string
			kernel uint64
		}{{"tx_bytes", after[id].tx - before[id].tx}, {"rx_bytes", after[id].rx - before[id].rx}} {
			got, want := metric(key, "container_network."+dir.name)*dt, float64(dir.kernel)
			if !within(got, want, networkTolerance*want+networkSlack) {
				t.Errorf("%s: %.0f bytes over the plugin's %.3f s, the kernel's %.0f", dir.name, got, dt, want)
			}
			t.Logf("%s: %.0f bytes, the kernel's %.0f: %+.2f %%", dir.name, got, want, (got-want)/want*100)
		}
		if sent := float64(after[id].tx - before[id].tx); sent < float64(moved) {
			t.Errorf("the kernel counted %.0f bytes sent, fewer than the %d moved", sent, moved)
		}
	}
	t.Run("network", func(t *testing.T) { network(t, "net-8080", bridge.id, bridge.id, bridgeBytes) })
	t.Run("awsvpc network once", func(t *testing.T) {
		network(t, "orders-8080", orders.id, pause.id, awsvpcBytes)
		for _, name := range []string{"tx_bytes", "rx_bytes"} {
			if o, s := metric("orders-8080", "container_network."+name), metric("sidecar-9090", "container_network."+name); o != s {
				t.Errorf("%s: orders %v, sidecar %v: want the task's, the same", name, o, s)
			}
		}
		if _, ok := m["gostats.~internal~ecs~pause-0.container_memory.usage"]; ok || strings.Contains(r2.stdout, "internal") {
			t.Errorf("the pause container reported:\n%s", r2.stdout)
		}
	})
	t.Run("hung endpoint", func(t *testing.T) {
		if _, ok := m["gostats.hang-8080.runtime.goroutine_num"]; ok {
			t.Errorf("the hung endpoint has runtime values")
		}
		if v := metric("hang-8080", "container_memory.usage"); v <= 0 {
			t.Errorf("memory %v", v)
		}
		metric("hang-8080", "container_cpu.usage")
		metric("hang-8080", "container_cpu.limit")
	})
}
