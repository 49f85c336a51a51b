package cstats

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// The docker_*.json answers were recorded from a Docker Engine 20.10 on
// cgroup v1 (cgroupfs driver, 2 CPUs, MemTotal 24684084 kB) with
// GET /v1.41/containers/<id>/stats?stream=false&one-shot=true, of containers
// of testdata/burn:
//
//	docker_cpus_half_{1,2}     --cpus 0.5, BURN_CPU=1 BURN_MIB=32, ~3 s apart
//	docker_cgroup_parent_{1,2} --cgroup-parent /ecs/<task id>, whose cpu
//	                           cgroup had cfs_quota_us 25000 over
//	                           cfs_period_us 100000 and memory cgroup
//	                           limit_in_bytes 268435456, BURN_CPU=1 BURN_MIB=48
//	docker_memory              --memory 128m, BURN_MIB=64
//	docker_network_none        --network none, BURN_MIB=16
//	docker_stopped             the same container once stopped

const hostMemory = 24684084 << 10 // the recording host's MemTotal: 25276502016

func TestDockerCPUsHalf(t *testing.T) {
	s1, s2 := readDocker(t, "docker_cpus_half_1.json"), readDocker(t, "docker_cpus_half_2.json")
	v1, prev, ok := DockerValues(nil, &s1)
	if !ok {
		t.Fatal("first answer: no sample")
	}
	// the first run has nothing to compare with: memory only
	absent(t, "first CPU", v1.CPU)
	absent(t, "first NetRx", v1.NetRx)
	absent(t, "first DiskRead", v1.DiskRead)
	// usage 35491840 − total_inactive_file 0
	equal(t, "first Memory", v1.Memory, 35491840)

	v, cur, ok := DockerValues(&prev, &s2)
	if !ok {
		t.Fatal("second answer: no sample")
	}
	// read 22:07:49.320867402 − 22:07:46.206136297 = 3.114731105 s
	// total_usage 4871609923 − 3366075724 = 1505534199 ns → 48.34 %
	approx(t, "CPU", v.CPU, 1505534199.0/3114731105*100)
	// usage_in_usermode 4780000000 − 3290000000 = 1490000000 ns
	approx(t, "CPUUser", v.CPUUser, 1490000000.0/3114731105*100)
	// usage_in_kernelmode 90000000 − 70000000 = 20000000 ns
	approx(t, "CPUSystem", v.CPUSystem, 20000000.0/3114731105*100)
	// eth0 rx 1112 → 1112, tx 0 → 0; blkio lists empty: no I/O
	approx(t, "NetRx", v.NetRx, 0)
	approx(t, "NetTx", v.NetTx, 0)
	approx(t, "DiskRead", v.DiskRead, 0)
	approx(t, "DiskWrite", v.DiskWrite, 0)
	// usage 35225600 − total_inactive_file 0
	equal(t, "Memory", v.Memory, 35225600)
	if !cur.Read.Equal(time.Date(2026, 12, 1, 22, 7, 49, 320867402, time.UTC)) {
		t.Errorf("Sample.Read = %v", cur.Read)
	}

	// HostConfig (docker inspect): NanoCpus 500000000, Memory 0
	in := StatsLimitInputs(&s2)
	in.NanoCPUs, in.HostMemory = 500000000, hostMemory
	l := ResolveLimits(in)
	// 500000000 / 1e9 × 100 = 50
	approx(t, "CPU limit", l.CPU, 50)
	// no memory limit: hierarchical_memory_limit 2^63 − 4096
	absent(t, "Memory limit", l.Memory)
}

func TestDockerCgroupParent(t *testing.T) {
	s1, s2 := readDocker(t, "docker_cgroup_parent_1.json"), readDocker(t, "docker_cgroup_parent_2.json")
	_, prev, _ := DockerValues(nil, &s1)
	v, _, ok := DockerValues(&prev, &s2)
	if !ok {
		t.Fatal("no sample")
	}
	// 2773907027 − 2021489383 = 752417644 ns over
	// 22:07:50.327420461 − 22:07:47.211502739 = 3.115917722 s → 24.15 %
	approx(t, "CPU", v.CPU, 752417644.0/3115917722*100)
	equal(t, "Memory", v.Memory, 52113408) // 52113408 − 0

	// HostConfig has no limit; the parent's cgroup has quota 25000 / 100000
	in := StatsLimitInputs(&s2)
	in.HostMemory = hostMemory
	in.Parent = CgroupLimits{CPUQuota: 25000, CPUPeriod: 100000, Memory: 268435456}
	l := ResolveLimits(in)
	approx(t, "CPU limit", l.CPU, 25) // 25000 / 100000 × 100
	// hierarchical_memory_limit 268435456, the parent's 256 MiB
	equal(t, "Memory limit", l.Memory, 268435456)

	// without the parent's files, the memory still comes from the stats
	in.Parent = CgroupLimits{}
	l = ResolveLimits(in)
	approx(t, "CPU limit without the parent", l.CPU, 200) // online_cpus 2 × 100
	equal(t, "Memory limit without the parent", l.Memory, 268435456)
}

func TestDockerMemory(t *testing.T) {
	s := readDocker(t, "docker_memory.json")
	v, _, ok := DockerValues(nil, &s)
	if !ok {
		t.Fatal("no sample")
	}
	equal(t, "Memory", v.Memory, 68837376) // usage 68837376 − total_inactive_file 0
	// HostConfig.Memory 134217728 (--memory 128m)
	in := StatsLimitInputs(&s)
	in.Memory, in.HostMemory = 134217728, hostMemory
	l := ResolveLimits(in)
	equal(t, "Memory limit", l.Memory, 134217728)
	approx(t, "CPU limit", l.CPU, 200) // no quota: online_cpus 2 × 100
}

func TestDockerNetworkNone(t *testing.T) {
	s := readDocker(t, "docker_network_none.json")
	smp, ok := SampleOf(&s)
	if !ok {
		t.Fatal("no sample")
	}
	// no "networks": no network counters, not zero ones
	absent(t, "NetRx", smp.NetRx)
	absent(t, "NetTx", smp.NetTx)
	// total_usage 43161090, usermode 20000000, kernelmode 20000000
	equal(t, "CPU", smp.CPU, 43161090)
	equal(t, "CPUUser", smp.CPUUser, 20000000)
	equal(t, "CPUSystem", smp.CPUSystem, 20000000)
	// io_service_bytes_recursive is [] : no I/O, which is 0
	equal(t, "DiskRead", smp.DiskRead, 0)
	equal(t, "DiskWrite", smp.DiskWrite, 0)

	later := smp
	later.Read = smp.Read.Add(2 * time.Second)
	c := *smp.CPU + 1e9
	later.CPU = &c
	v := Between(smp, later)
	approx(t, "CPU", v.CPU, 50) // 1e9 ns over 2 s
	absent(t, "NetRx between", v.NetRx)
	approx(t, "DiskRead between", v.DiskRead, 0)
}

func TestDockerStopped(t *testing.T) {
	s := readDocker(t, "docker_stopped.json")
	if smp, ok := SampleOf(&s); ok {
		t.Errorf("a stopped container's answer (read 0001-01-01) is a sample: %+v", smp)
	}
	prev, _ := SampleOf(ptr(readDocker(t, "docker_network_none.json")))
	if v, _, ok := DockerValues(&prev, &s); ok {
		t.Errorf("values of a stopped container: %+v", v)
	}
	if _, ok := SampleOf(&engineapi.StatsResponse{}); ok {
		t.Error("an empty answer is a sample")
	}
	if _, ok := SampleOf(nil); ok {
		t.Error("nil is a sample")
	}
}

func TestDecodeDockerStatsErrors(t *testing.T) {
	for _, body := range []string{"", "not json", `{"read": "yesterday"}`, `[1]`} {
		_, err := DecodeDockerStats(strings.NewReader(body))
		if err == nil {
			t.Errorf("%q: no error", body)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "decoding docker stats: ") || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q is not one line naming what failed", body, msg)
		}
	}
}

func sample(read time.Time, cpu, rx, dr uint64) Sample {
	return Sample{Read: read, CPU: &cpu, CPUUser: ptr(cpu / 2), CPUSystem: ptr(cpu / 4), NetRx: &rx, NetTx: ptr(rx * 2), DiskRead: &dr, DiskWrite: ptr(dr / 2)}
}

func TestBetween(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	prev := sample(t0, 1e9, 1000, 4096)

	// 4 s later: CPU +2e9 ns, rx +4000, read +8192
	v := Between(prev, sample(t0.Add(4*time.Second), 3e9, 5000, 12288))
	approx(t, "CPU", v.CPU, 50)               // 2e9 / 4e9 × 100
	approx(t, "CPUUser", v.CPUUser, 25)       // (1.5e9 − 0.5e9) / 4e9 × 100
	approx(t, "CPUSystem", v.CPUSystem, 12.5) // (0.75e9 − 0.25e9) / 4e9 × 100
	approx(t, "NetRx", v.NetRx, 1000)         // 4000 / 4
	approx(t, "NetTx", v.NetTx, 2000)         // (10000 − 2000) / 4
	approx(t, "DiskRead", v.DiskRead, 2048)   // 8192 / 4
	approx(t, "DiskWrite", v.DiskWrite, 1024)
	absent(t, "Memory", v.Memory)

	none := func(what string, cur Sample) {
		t.Helper()
		if v := Between(prev, cur); v != (Values{}) {
			t.Errorf("%s: %+v, want no values", what, v)
		}
	}
	none("read did not advance", sample(t0, 3e9, 5000, 12288))
	none("read went back", sample(t0.Add(-time.Second), 3e9, 5000, 12288))
	none("over 10 minutes", sample(t0.Add(MaxGap+time.Nanosecond), 3e9, 5000, 12288))
	none("CPU went down (restart)", sample(t0.Add(time.Second), 1e8, 5000, 12288))
	none("rx went down (restart)", sample(t0.Add(time.Second), 3e9, 10, 12288))
	none("disk went down (restart)", sample(t0.Add(time.Second), 3e9, 5000, 0))
	none("no sample", Sample{})
	if v := Between(Sample{}, prev); v != (Values{}) {
		t.Errorf("from no sample: %+v", v)
	}

	// exactly 10 minutes still counts: 6e9 ns over 600 s = 1 %
	v = Between(prev, sample(t0.Add(MaxGap), 7e9, 1000, 4096))
	approx(t, "CPU over 10 min", v.CPU, 1)
	approx(t, "NetRx over 10 min", v.NetRx, 0)

	// a counter only one sample has gives no value; the others still do
	cur := sample(t0.Add(2*time.Second), 2e9, 3000, 4096)
	cur.NetRx, cur.NetTx = nil, nil
	v = Between(prev, cur)
	approx(t, "CPU", v.CPU, 50) // 1e9 / 2e9 × 100
	absent(t, "NetRx", v.NetRx)
	absent(t, "NetTx", v.NetTx)
	approx(t, "DiskRead", v.DiskRead, 0)
}

func TestSampleJSON(t *testing.T) {
	s, _ := SampleOf(ptr(readDocker(t, "docker_cpus_half_2.json")))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"t":"2026-12-01T22:07:49.320867402Z","c":4871609923,"cu":4780000000,"cs":90000000,` +
		`"rx":1112,"tx":0,"dr":0,"dw":0}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back Sample
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	// the same read time: no values at all
	if v := Between(back, s); v != (Values{}) {
		t.Errorf("Between a sample and its own JSON round trip: %+v", v)
	}
	if !back.Read.Equal(s.Read) || *back.CPU != *s.CPU || *back.NetTx != 0 || *back.DiskWrite != 0 {
		t.Errorf("round trip: %+v, want %+v", back, s)
	}

	// absent counters are left out, not written as 0
	s2, _ := SampleOf(ptr(readDocker(t, "docker_network_none.json")))
	b, _ = json.Marshal(s2)
	if strings.Contains(string(b), `"rx"`) || strings.Contains(string(b), `"tx"`) {
		t.Errorf("JSON of a sample without networks: %s", b)
	}
}

func TestWorkingSet(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    engineapi.MemoryStats
		want uint64
		ok   bool
	}{
		// cgroup v1: total_inactive_file, not inactive_file
		{"v1", engineapi.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 30, "inactive_file": 10}}, 70, true},
		// v1 with total_inactive_file 0 still is v1
		{"v1 zero", engineapi.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 0, "inactive_file": 10}}, 100, true},
		{"v2", engineapi.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 10}}, 90, true},
		{"never below 0", engineapi.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 300}}, 0, true},
		{"equal", engineapi.MemoryStats{Usage: 100, Stats: map[string]uint64{"total_inactive_file": 100}}, 0, true},
		{"no stats", engineapi.MemoryStats{Usage: 100}, 100, true},
		{"nothing", engineapi.MemoryStats{}, 0, false},
	} {
		got, ok := WorkingSet(tt.m)
		if got != tt.want || ok != tt.ok {
			t.Errorf("%s: WorkingSet = %d, %v; want %d, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestDiskTotals(t *testing.T) {
	b := engineapi.BlkioStats{IoServiceBytesRecursive: []engineapi.BlkioStatEntry{
		// device 8:0, as cgroup v1 names the ops
		{Op: "Read", Value: 100},
		{Op: "Write", Value: 10},
		{Op: "Total", Value: 110},
		// device 8:16, as cgroup v2 names them, and the case varying
		{Op: "read", Value: 1},
		{Op: "write", Value: 2},
		{Op: "READ", Value: 1000},
		{Op: "Discard", Value: 5000},
		{Op: "Sync", Value: 7000},
	}}
	r, w, ok := DiskTotals(b)
	// read 100 + 1 + 1000, write 10 + 2; Total, Discard and Sync not counted
	if r != 1101 || w != 12 || !ok {
		t.Errorf("DiskTotals = %d, %d, %v; want 1101, 12, true", r, w, ok)
	}
	if _, _, ok := DiskTotals(engineapi.BlkioStats{}); ok {
		t.Error("no list: ok")
	}
	if r, w, ok := DiskTotals(engineapi.BlkioStats{IoServiceBytesRecursive: []engineapi.BlkioStatEntry{}}); r != 0 || w != 0 || !ok {
		t.Errorf("empty list: %d, %d, %v; want 0, 0, true", r, w, ok)
	}
}

func TestStatsPath(t *testing.T) {
	if got, want := StatsPath("3843bb276013"), "/containers/3843bb276013/stats?stream=false&one-shot=true"; got != want {
		t.Errorf("StatsPath = %q, want %q", got, want)
	}
	if got := StatsPath("a/b"); got != "/containers/a%2Fb/stats?stream=false&one-shot=true" {
		t.Errorf("StatsPath of a name with a slash = %q", got)
	}
}
