package cstats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes each path (relative to dir) with its content.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadCgroupLimitsV1(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"cpu/ecs/abc/cpu.cfs_quota_us":             "50000\n",
		"cpu/ecs/abc/cpu.cfs_period_us":            "100000\n",
		"memory/ecs/abc/memory.limit_in_bytes":     "536870912\n",
		"cpu/ecs/none/cpu.cfs_quota_us":            "-1\n",
		"cpu/ecs/none/cpu.cfs_period_us":           "100000\n",
		"memory/ecs/none/memory.limit_in_bytes":    "9223372036854771712\n",
		"memory/ecs/memonly/memory.limit_in_bytes": "1073741824\n",
		"cpu/ecs/bad/cpu.cfs_quota_us":             "lots\n",
		"cpu/ecs/bad/cpu.cfs_period_us":            "100000\n",
	})
	for _, tt := range []struct {
		parent string
		want   CgroupLimits
	}{
		{"/ecs/abc", CgroupLimits{CPUQuota: 50000, CPUPeriod: 100000, Memory: 536870912}},
		{"ecs/abc", CgroupLimits{CPUQuota: 50000, CPUPeriod: 100000, Memory: 536870912}},
		{"/ecs/none", CgroupLimits{CPUQuota: -1, CPUPeriod: 100000, Memory: 9223372036854771712}},
		{"/ecs/memonly", CgroupLimits{Memory: 1 << 30}},
	} {
		got, err := ReadCgroupLimits(root, tt.parent)
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.parent, got, err, tt.want)
		}
	}
	_, err := ReadCgroupLimits(root, "/ecs/missing")
	if err == nil || !strings.Contains(err.Error(), "/ecs/missing") || strings.Contains(err.Error(), "\n") {
		t.Errorf("missing parent: error %v, want one line naming it", err)
	}
	if _, err := ReadCgroupLimits(root, "/ecs/bad"); err == nil || !strings.Contains(err.Error(), "lots") {
		t.Errorf("a quota that is no number: error %v", err)
	}

	// cpu and cpuacct co-mounted, no cpu/ link
	root = t.TempDir()
	writeFiles(t, root, map[string]string{
		"cpu,cpuacct/ecs/abc/cpu.cfs_quota_us":  "150000\n",
		"cpu,cpuacct/ecs/abc/cpu.cfs_period_us": "100000\n",
	})
	got, err := ReadCgroupLimits(root, "/ecs/abc")
	if want := (CgroupLimits{CPUQuota: 150000, CPUPeriod: 100000}); err != nil || got != want {
		t.Errorf("cpu,cpuacct: %+v, %v; want %+v", got, err, want)
	}
}

func TestReadCgroupLimitsV2(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"cgroup.controllers": "cpuset cpu io memory pids\n",
		"ecs/abc/cpu.max":    "25000 100000\n",
		"ecs/abc/memory.max": "268435456\n",
		"ecs/max/cpu.max":    "max 100000\n",
		"ecs/max/memory.max": "max\n",
		"ecstasks.slice/ecstasks-0123abcd.slice/cpu.max":    "200000 100000\n",
		"ecstasks.slice/ecstasks-0123abcd.slice/memory.max": "1073741824\n",
		"ecs/bad/cpu.max":    "1 2 3\n",
		"ecs/bad/memory.max": "-\n",
	})
	for _, tt := range []struct {
		parent string
		want   CgroupLimits
	}{
		{"/ecs/abc", CgroupLimits{CPUQuota: 25000, CPUPeriod: 100000, Memory: 268435456}},
		{"/ecs/max", CgroupLimits{CPUQuota: -1, CPUPeriod: 100000}},
		// the systemd driver's parent is a slice name
		{"ecstasks-0123abcd.slice", CgroupLimits{CPUQuota: 200000, CPUPeriod: 100000, Memory: 1 << 30}},
	} {
		got, err := ReadCgroupLimits(root, tt.parent)
		if err != nil || got != tt.want {
			t.Errorf("%s: %+v, %v; want %+v", tt.parent, got, err, tt.want)
		}
	}
	if _, err := ReadCgroupLimits(root, "/ecs/bad"); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("bad files: error %v, want one line", err)
	}
	if _, err := ReadCgroupLimits(root, "/ecs/missing"); err == nil {
		t.Error("missing parent: no error")
	}
}

func TestCgroupParentPath(t *testing.T) {
	for in, want := range map[string]string{
		"/ecs/abc":                  "/ecs/abc",
		"ecs/abc":                   "/ecs/abc",
		"/docker":                   "/docker",
		"ecstasks-abc.slice":        "/ecstasks.slice/ecstasks-abc.slice",
		"a-b-c.slice":               "/a.slice/a-b.slice/a-b-c.slice",
		"system.slice":              "/system.slice",
		"-.slice":                   "/",
		"/ecstasks.slice/x-y.slice": "/ecstasks.slice/x-y.slice",
		"":                          "/",
	} {
		if got := CgroupParentPath(in); got != want {
			t.Errorf("CgroupParentPath(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestReadCgroupLimitsHost reads this host's root cgroup, which has no
// limits, wherever a cgroup filesystem is mounted.
func TestReadCgroupLimitsHost(t *testing.T) {
	const root = "/sys/fs/cgroup"
	if _, err := os.Stat(root); err != nil {
		t.Skip("no cgroup filesystem: ", err)
	}
	l, err := ReadCgroupLimits(root, "/")
	if err != nil {
		// a v2 root has no cpu.max nor memory.max
		if _, e := os.Stat(filepath.Join(root, "cgroup.controllers")); e == nil {
			return
		}
		t.Skip("the root cgroup's files are not readable: ", err)
	}
	if l.CPUQuota > 0 {
		t.Errorf("the root cgroup has a CPU quota: %+v", l)
	}
	if m, ok := MemoryLimit(LimitInputs{Parent: l}); ok {
		t.Errorf("the root cgroup has a memory limit: %d", m)
	}
}
