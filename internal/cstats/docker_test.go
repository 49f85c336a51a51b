package cstats

// The real Docker test: containers of testdata/burn on the daemon at
// $DOCKER_HOST, their stats as the plugin asks for them, compared with what
// their own cgroup files say over the same interval.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
)

const cgroupRoot = "/sys/fs/cgroup"

// burnMiB is the memory each test container touches and holds.
const burnMiB = 64

func TestRealDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dc, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer dc.Close()
	info, err := dc.Info(ctx)
	if err != nil {
		testenv.SkipUnlessCI(t, fmt.Sprintf("no Docker daemon answers at %s: %v", dc.DaemonHost(), err))
	}

	run := randomHex(t, 6)
	img := "cstats-burn:test-" + run
	importBurn(ctx, t, dc, img)

	// A task's cgroup parent, as the ECS agent makes it on cgroup v1 with
	// the cgroupfs driver: a quota of 25000 µs per 100000 µs (0.25 vCPU)
	// and 256 MiB.
	parent := ""
	if info.CgroupDriver == "cgroupfs" && info.CgroupVersion != "2" {
		parent = makeParent(t, "/ecs/cstats-"+run, 25000, 100000, 256<<20)
	} else {
		t.Logf("cgroup driver %s, version %s: no task cgroup parent (cgroup v1 and cgroupfs only)", info.CgroupDriver, info.CgroupVersion)
	}

	type burner struct {
		name  string
		id    string
		pid   int
		cg    cgroupFiles
		hc    container.HostConfig
		wantL float64 // the CPU limit, %
	}
	burners := []*burner{{name: "cpus", hc: container.HostConfig{Resources: container.Resources{NanoCPUs: 5e8}}, wantL: 50}}
	if parent != "" {
		burners = append(burners, &burner{name: "parent", hc: container.HostConfig{Resources: container.Resources{CgroupParent: parent}}, wantL: 25})
	}
	for _, b := range burners {
		b.id, b.pid = runBurn(ctx, t, dc, img, "cstats-"+b.name+"-"+run, b.hc)
		var err error
		if b.cg, err = findCgroup(b.pid, b.id); err != nil {
			testenv.SkipUnlessCI(t, "the container's cgroup files are not readable here (a remote daemon?): "+err.Error())
		}
	}
	// its memory is touched before it spins: wait for it
	for _, b := range burners {
		deadline := time.Now().Add(5 * time.Second)
		for {
			ws, err := b.cg.workingSet()
			if err != nil {
				t.Fatal(err)
			}
			if ws >= burnMiB<<20 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: working set %d after 5 s, want %d MiB", b.name, ws, burnMiB)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// Two rounds 2 s apart: Docker's stats of each container, and right
	// after they come back, its cgroup's CPU time at a time of our own.
	type round struct {
		stats engineapi.StatsResponse
		cpu   uint64 // ns, from the cgroup
		at    time.Time
	}
	rounds := make([][2]round, len(burners))
	for r := range 2 {
		if r == 1 {
			time.Sleep(2 * time.Second)
		}
		for i, b := range burners {
			s := oneShot(ctx, t, dc, b.id)
			cpu, err := b.cg.cpuUsage()
			if err != nil {
				t.Fatal(err)
			}
			rounds[i][r] = round{s, cpu, time.Now()}
		}
	}

	host, err := ReadMemTotal("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range burners {
		r0, r1 := rounds[i][0], rounds[i][1]
		_, prev, ok := DockerValues(nil, &r0.stats)
		if !ok {
			t.Fatalf("%s: the first answer is no sample", b.name)
		}
		v, _, ok := DockerValues(&prev, &r1.stats)
		if !ok {
			t.Fatalf("%s: the second answer is no sample", b.name)
		}
		cgroupCPU := float64(r1.cpu-r0.cpu) / float64(r1.at.Sub(r0.at).Nanoseconds()) * 100
		t.Logf("%s: CPU %.2f %% from Docker's stats over %v, %.2f %% from the cgroup over %v",
			b.name, deref(v.CPU), r1.stats.Read.Sub(r0.stats.Read), cgroupCPU, r1.at.Sub(r0.at))
		within(t, b.name+" CPU", v.CPU, cgroupCPU, 0.10)
		// the busy loop uses all its quota, unless the host is too busy
		if v.CPU != nil && *v.CPU > b.wantL*1.1 {
			t.Errorf("%s: CPU %.2f %% over its limit %v %%", b.name, *v.CPU, b.wantL)
		}

		ws, err := b.cg.workingSet()
		if err != nil {
			t.Fatal(err)
		}
		if v.Memory == nil {
			t.Fatalf("%s: no memory", b.name)
		}
		t.Logf("%s: working set %d from Docker's stats, %d from the cgroup", b.name, *v.Memory, ws)
		if d := int64(*v.Memory) - int64(ws); d > 4<<20 || d < -4<<20 {
			t.Errorf("%s: working set %d, the cgroup's %d: over 4 MiB apart", b.name, *v.Memory, ws)
		}
		if *v.Memory < burnMiB<<20 {
			t.Errorf("%s: working set %d, below the %d MiB it holds", b.name, *v.Memory, burnMiB)
		}

		// limits: its own quota, or its parent's
		in := StatsLimitInputs(&r1.stats)
		in.NanoCPUs, in.HostMemory = b.hc.NanoCPUs, host
		if b.hc.CgroupParent != "" {
			if in.Parent, err = ReadCgroupLimits(cgroupRoot, b.hc.CgroupParent); err != nil {
				t.Fatal(err)
			}
			if want := (CgroupLimits{CPUQuota: 25000, CPUPeriod: 100000, Memory: 256 << 20}); in.Parent != want {
				t.Errorf("%s: ReadCgroupLimits = %+v, want %+v", b.name, in.Parent, want)
			}
		}
		l := ResolveLimits(in)
		approx(t, b.name+" CPU limit", l.CPU, b.wantL)
		if b.hc.CgroupParent != "" {
			equal(t, b.name+" Memory limit", l.Memory, 256<<20)
		} else {
			absent(t, b.name+" Memory limit", l.Memory)
		}

		// its network namespace seen from /proc, as for an awsvpc pause
		// container: eth0 as Docker shows it, read a little later
		rx, tx, err := ReadNetDev(fmt.Sprintf("/proc/%d/net/dev", b.pid))
		if err != nil {
			t.Fatal(err)
		}
		srx, stx, ok := NetworkTotals(r1.stats.Networks)
		if !ok {
			t.Fatalf("%s: no networks in Docker's stats", b.name)
		}
		if rx < srx || tx < stx || rx-srx > 64<<10 || tx-stx > 64<<10 {
			t.Errorf("%s: net/dev %d / %d, Docker's stats %d / %d", b.name, rx, tx, srx, stx)
		}
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// importBurn builds testdata/burn (static) and imports it as image img,
// removed at the end of the test.
func importBurn(ctx context.Context, t *testing.T, dc *client.Client, img string) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "burn")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./testdata/burn")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building testdata/burn: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "burn", Mode: 0o755, Size: int64(len(exe)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(exe)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	rc, err := dc.ImageImport(ctx, image.ImportSource{Source: &buf, SourceName: "-"}, img,
		image.ImportOptions{Changes: []string{`ENTRYPOINT ["/burn"]`}})
	if err != nil {
		t.Fatalf("importing %s: %v", img, err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	t.Cleanup(func() {
		if _, err := dc.ImageRemove(context.Background(), img, image.RemoveOptions{Force: true, PruneChildren: true}); err != nil {
			t.Errorf("removing %s: %v", img, err)
		}
	})
}

// runBurn starts a container of img holding burnMiB MiB and spinning,
// removed at the end of the test, and returns its id and pid.
func runBurn(ctx context.Context, t *testing.T, dc *client.Client, img, name string, hc container.HostConfig) (string, int) {
	t.Helper()
	cfg := &container.Config{Image: img, Env: []string{"BURN_CPU=1", "BURN_MIB=" + strconv.Itoa(burnMiB)}}
	cr, err := dc.ContainerCreate(ctx, cfg, &hc, nil, nil, name)
	if err != nil {
		t.Fatalf("creating %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := dc.ContainerRemove(context.Background(), cr.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("removing %s: %v", name, err)
		}
	})
	if err := dc.ContainerStart(ctx, cr.ID, container.StartOptions{}); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	ci, err := dc.ContainerInspect(ctx, cr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ci.State == nil || ci.State.Pid == 0 {
		t.Fatalf("%s: not running", name)
	}
	return cr.ID, ci.State.Pid
}

// oneShot is the container's stats as the plugin asks for them.
func oneShot(ctx context.Context, t *testing.T, dc *client.Client, id string) engineapi.StatsResponse {
	t.Helper()
	r, err := dc.ContainerStatsOneShot(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	s, err := DecodeDockerStats(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// makeParent makes cgroup v1 parent p with a CPU quota and a memory limit,
// as the ECS agent makes a task's, and removes it (in every controller the
// runtime made it in) at the end of the test; it returns p, or "" when it
// cannot make it.
func makeParent(t *testing.T, p string, quota, period int64, mem uint64) string {
	t.Helper()
	// the /ecs above it in each controller that had none before
	above := filepath.Dir(p)
	made := map[string]bool{}
	ctrls, _ := os.ReadDir(cgroupRoot)
	for _, c := range ctrls {
		if _, err := os.Stat(filepath.Join(cgroupRoot, c.Name(), above)); errors.Is(err, os.ErrNotExist) {
			made[c.Name()] = true
		}
	}
	t.Cleanup(func() {
		for _, c := range ctrls {
			d := filepath.Join(cgroupRoot, c.Name(), p)
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("removing cgroup %s: %v", d, err)
			}
			if made[c.Name()] {
				os.Remove(filepath.Join(cgroupRoot, c.Name(), above))
			}
		}
	})
	for _, c := range []string{"cpu", "memory"} {
		if err := os.MkdirAll(filepath.Join(cgroupRoot, c, p), 0o755); err != nil {
			t.Logf("no task cgroup parent: cannot make one (not root?): %v", err)
			return ""
		}
	}
	for _, f := range [...]struct{ file, v string }{
		{"cpu/" + p + "/cpu.cfs_period_us", strconv.FormatInt(period, 10)},
		{"cpu/" + p + "/cpu.cfs_quota_us", strconv.FormatInt(quota, 10)},
		{"memory/" + p + "/memory.limit_in_bytes", strconv.FormatUint(mem, 10)},
	} {
		if err := os.WriteFile(filepath.Join(cgroupRoot, f.file), []byte(f.v), 0o644); err != nil {
			t.Fatalf("setting the parent's limits: %v", err)
		}
	}
	return p
}

// cgroupFiles are where a container's cgroup shows its CPU time and memory.
type cgroupFiles struct {
	v2     bool
	cpu    string // v1 cpuacct dir, or the v2 dir
	memory string // v1 memory dir, or the v2 dir
}

// findCgroup finds the cgroup directories of process pid from
// /proc/<pid>/cgroup; they must name the container id.
func findCgroup(pid int, id string) (cgroupFiles, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return cgroupFiles{}, err
	}
	defer f.Close()
	// a v1 hierarchy per controller; on a v2 or hybrid host also the
	// unified one ("0::path"), taken only without v1's cpuacct and memory
	var v1, v2 cgroupFiles
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-id:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 || !strings.Contains(parts[2], id) {
			continue
		}
		if parts[1] == "" {
			dir := filepath.Join(cgroupRoot, parts[2])
			v2 = cgroupFiles{v2: true, cpu: dir, memory: dir}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			switch c {
			case "cpuacct":
				v1.cpu = filepath.Join(cgroupRoot, parts[1], parts[2])
			case "memory":
				v1.memory = filepath.Join(cgroupRoot, parts[1], parts[2])
			}
		}
	}
	cg := v1
	if cg.cpu == "" || cg.memory == "" {
		cg = v2
	}
	if cg.cpu == "" {
		return cgroupFiles{}, fmt.Errorf("no cgroup of container %s in /proc/%d/cgroup", id, pid)
	}
	if _, err := os.Stat(cg.memory); err != nil {
		return cgroupFiles{}, err
	}
	return cg, nil
}

// cpuUsage is the cgroup's CPU time in ns.
func (cg cgroupFiles) cpuUsage() (uint64, error) {
	if !cg.v2 {
		return readUint(filepath.Join(cg.cpu, "cpuacct.usage"), false)
	}
	usec, err := statField(filepath.Join(cg.cpu, "cpu.stat"), "usage_usec")
	return usec * 1000, err
}

// workingSet is the cgroup's memory usage less its inactive file cache.
func (cg cgroupFiles) workingSet() (uint64, error) {
	usage, key, stat := "memory.usage_in_bytes", "total_inactive_file", "memory.stat"
	if cg.v2 {
		usage, key = "memory.current", "inactive_file"
	}
	u, err := readUint(filepath.Join(cg.memory, usage), false)
	if err != nil {
		return 0, err
	}
	inactive, err := statField(filepath.Join(cg.memory, stat), key)
	if err != nil {
		return 0, err
	}
	if inactive > u {
		return 0, nil
	}
	return u - inactive, nil
}

// statField is the value of key in a "key value" per line file.
func statField(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == key {
			return strconv.ParseUint(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", path, key)
}
