package cstats

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testdata/task_stats_v1_awsvpc.json is hand-written in the shape of an
// awsvpc task's /task/stats on cgroup v1: a pause container (0a1c…) and an
// app (5b0f…) both carrying the ENI eth1, capitalised blkio ops with Sync,
// Async, Discard and Total beside Read and Write on two devices, a `null`
// entry (e7f3…) and a `{}` one (f00d…).
const (
	v1Pause = "0a1c5e2f9b3d4c6a8e7f0b1a2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d"
	v1App   = "5b0f3e1d7c9a2b4d6f8e0a1c3e5d7f9b1a3c5e7d9f0b2d4f6a8c0e2a4c6e8a0b"
	v1Null  = "e7f3a9c1b5d7e9f1a3b5c7d9e1f3a5b7c9d1e3f5a7b9c1d3e5f7a9b1c3d5e7f9"
	v1Empty = "f00d5eed1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d"
)

func TestTaskStatsV1AWSVPC(t *testing.T) {
	ts := readTask(t, filepath.Join("testdata", "task_stats_v1_awsvpc.json"))
	if len(ts) != 4 {
		t.Fatalf("%d entries, want 4", len(ts))
	}
	if ts[v1Null] != nil {
		t.Errorf("null entry decoded as %+v", ts[v1Null])
	}
	for _, id := range []string{v1Null, v1Empty} {
		if v, _, ok := TaskValues(nil, ts[id]); ok {
			t.Errorf("%s…: values %+v of a null or {} entry", id[:4], v)
		}
	}

	v, cur, ok := TaskValues(nil, ts[v1App])
	if !ok {
		t.Fatal("app: no sample")
	}
	// read − preread = 10 s; total 12.5e9 − 10e9 = 2.5e9 ns → 25 %
	approx(t, "CPU", v.CPU, 25)
	approx(t, "CPUUser", v.CPUUser, 20)    // (10e9 − 8e9) / 10e9 × 100
	approx(t, "CPUSystem", v.CPUSystem, 5) // (2.5e9 − 2e9) / 10e9 × 100
	// 100 MiB − total_inactive_file 20 MiB (not inactive_file 10 MiB) = 80 MiB
	equal(t, "Memory", v.Memory, 80<<20)
	// network_rate_stats
	approx(t, "NetRx", v.NetRx, 1234.5)
	approx(t, "NetTx", v.NetTx, 678.25)
	// disk needs an earlier run
	absent(t, "DiskRead", v.DiskRead)
	// Read 4096000 + 1000, Write 8192 + 2000
	equal(t, "Sample.DiskRead", cur.DiskRead, 4097000)
	equal(t, "Sample.DiskWrite", cur.DiskWrite, 10192)
	equal(t, "Sample.NetRx", cur.NetRx, 5000000)
	equal(t, "Sample.NetTx", cur.NetTx, 600000)

	// with the previous run 60 s earlier: disk rates from the counters
	// (61440 B read and 600 B written since), the CPU still from precpu_stats
	// (not the 6e9 ns since: 6e9 / 60e9 × 100 = 10 %)
	prev := Sample{Read: cur.Read.Add(-60 * time.Second), CPU: ptr(uint64(12.5e9 - 6e9)),
		DiskRead: ptr(uint64(4097000 - 61440)), DiskWrite: ptr(uint64(10192 - 600))}
	v, _, _ = TaskValues(&prev, ts[v1App])
	approx(t, "DiskRead", v.DiskRead, 1024) // 61440 / 60
	approx(t, "DiskWrite", v.DiskWrite, 10) // 600 / 60
	approx(t, "CPU from precpu", v.CPU, 25)
	approx(t, "NetRx from the rates", v.NetRx, 1234.5)

	// the pause container: no CPU over its 10 s, 1 MiB − 0
	v, _, ok = TaskValues(nil, ts[v1Pause])
	if !ok {
		t.Fatal("pause: no sample")
	}
	approx(t, "pause CPU", v.CPU, 0)
	equal(t, "pause Memory", v.Memory, 1<<20)
	// io_service_bytes_recursive is []: no I/O
	_, cur, _ = TaskValues(nil, ts[v1Pause])
	equal(t, "pause Sample.DiskRead", cur.DiskRead, 0)

	// The ENI is the task's: taken once, from the smallest id (the pause
	// container's, 0a1c… < 5b0f…), its network_rate_stats 1200 / 650.
	id, rx, tx := TaskNetwork(ts, nil)
	if id != v1Pause {
		t.Errorf("TaskNetwork id = %s", id)
	}
	approx(t, "task NetRx", rx, 1200)
	approx(t, "task NetTx", tx, 650)

	// Limits: no container limit; hierarchical_memory_limit 512 MiB (the
	// task's) and stats limit 2^63 − 4096, which is not an input.
	in := StatsLimitInputs(&ts[v1App].StatsResponse)
	in.TaskCPUs = 0.5
	l := ResolveLimits(in)
	approx(t, "CPU limit", l.CPU, 50) // 0.5 vCPU × 100
	equal(t, "Memory limit", l.Memory, 512<<20)
}

// testdata/task_stats_v2_bridge.json is hand-written in the shape of a
// bridge task's /task/stats on cgroup v2: inactive_file without total_*
// keys, no percpu_usage, lower-case blkio ops, an entry without precpu
// (preread 0001-01-01) whose memory limit is 2^63 − 4096 and whose
// inactive_file exceeds its usage, and one without network_rate_stats.
const (
	v2Nginx   = "1111aaaa2222bbbb3333cccc4444dddd5555eeee6666ffff7777aaaa8888bbbb"
	v2Sidecar = "2222bbbb3333cccc4444dddd5555eeee6666ffff7777aaaa8888bbbb9999cccc"
)

func TestTaskStatsV2Bridge(t *testing.T) {
	ts := readTask(t, filepath.Join("testdata", "task_stats_v2_bridge.json"))

	v, cur, ok := TaskValues(nil, ts[v2Nginx])
	if !ok {
		t.Fatal("nginx: no sample")
	}
	// (3e9 − 1.5e9) ns over 12:00:01.25 − 12:00:00.25 = 1 s → 150 %
	approx(t, "CPU", v.CPU, 150)
	approx(t, "CPUUser", v.CPUUser, 125)    // (2.5e9 − 1.25e9) / 1e9 × 100
	approx(t, "CPUSystem", v.CPUSystem, 25) // (0.5e9 − 0.25e9) / 1e9 × 100
	equal(t, "Memory", v.Memory, 40000000)  // 50000000 − inactive_file 10000000
	// no network_rate_stats and no earlier run: no network rates
	absent(t, "NetRx", v.NetRx)
	// eth0 3000 + eth1 100; tx 4000 + 0
	equal(t, "Sample.NetRx", cur.NetRx, 3100)
	equal(t, "Sample.NetTx", cur.NetTx, 4000)
	// read 1048576 + 512, write 2097152 + 0
	equal(t, "Sample.DiskRead", cur.DiskRead, 1049088)
	equal(t, "Sample.DiskWrite", cur.DiskWrite, 2097152)

	// with the previous run 30 s earlier: rates from the counters
	prev := Sample{Read: cur.Read.Add(-30 * time.Second), NetRx: ptr(uint64(100)), NetTx: ptr(uint64(1000)),
		DiskRead: ptr(uint64(1049088)), DiskWrite: ptr(uint64(2097152 - 30720))}
	v, _, _ = TaskValues(&prev, ts[v2Nginx])
	approx(t, "NetRx", v.NetRx, 100)          // (3100 − 100) / 30
	approx(t, "NetTx", v.NetTx, 100)          // (4000 − 1000) / 30
	approx(t, "DiskRead", v.DiskRead, 0)      // no change
	approx(t, "DiskWrite", v.DiskWrite, 1024) // 30720 / 30
	approx(t, "CPU", v.CPU, 150)              // still precpu's

	// the sidecar: no precpu, so no CPU on the first run
	v, cur, ok = TaskValues(nil, ts[v2Sidecar])
	if !ok {
		t.Fatal("sidecar: no sample")
	}
	absent(t, "sidecar CPU", v.CPU)
	equal(t, "sidecar Memory", v.Memory, 0) // 4096000 − 8192000 < 0: 0
	approx(t, "sidecar NetRx", v.NetRx, 1.5)
	approx(t, "sidecar NetTx", v.NetTx, 2.5)
	// io_service_bytes_recursive null: no disk counters at all
	absent(t, "sidecar Sample.DiskRead", cur.DiskRead)
	// and CPU from an earlier run: 5 s before, 0.2e9 ns less → 4 %
	prev = Sample{Read: cur.Read.Add(-5 * time.Second), CPU: ptr(uint64(500000000))}
	v, _, _ = TaskValues(&prev, ts[v2Sidecar])
	approx(t, "sidecar CPU between runs", v.CPU, 4) // 0.2e9 / 5e9 × 100
	absent(t, "sidecar CPUUser between runs", v.CPUUser)

	// limits: the nginx container's 256 MiB (task metadata Limits.Memory
	// 256); the sidecar has none: stats limit 2^63 − 4096 is not an input,
	// and no task limit.
	in := StatsLimitInputs(&ts[v2Nginx].StatsResponse)
	in.MemoryMiB = 256
	equal(t, "nginx Memory limit", ResolveLimits(in).Memory, 268435456)
	in = StatsLimitInputs(&ts[v2Sidecar].StatsResponse)
	l := ResolveLimits(in)
	absent(t, "sidecar Memory limit", l.Memory)
	approx(t, "sidecar CPU limit", l.CPU, 200) // online_cpus 2 × 100
	in.MemoryMiB = 1 << 43                     // 2^63 bytes: not a limit
	absent(t, "sidecar Memory limit of 2^43 MiB", ResolveLimits(in).Memory)

	// both have their own network namespace, but TaskNetwork does not
	// know: it is for awsvpc tasks only; it takes the smallest id
	if id, _, _ := TaskNetwork(ts, nil); id != v2Nginx {
		t.Errorf("TaskNetwork id = %s", id)
	}
	// with the previous run of that id, the rates come from its counters
	id, rx, tx := TaskNetwork(ts, map[string]Sample{v2Nginx: {Read: cur.Read.Add(-10 * time.Second), NetRx: ptr(uint64(100)), NetTx: ptr(uint64(4000))}})
	if id != v2Nginx {
		t.Errorf("TaskNetwork id = %s", id)
	}
	// nginx read 12:00:01.25, the previous run 10 s before the sidecar's
	// read 12:00:01.5, i.e. 9.75 s before nginx's: (3100 − 100) / 9.75
	approx(t, "task NetRx", rx, 3000/9.75)
	approx(t, "task NetTx", tx, 0)
}

func TestTaskNetworkNone(t *testing.T) {
	ts, err := DecodeTaskStats(strings.NewReader(`{"a": null, "b": {}, "c": {"read": "2025-01-01T00:00:00Z", "memory_stats": {"usage": 1}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if id, rx, tx := TaskNetwork(ts, nil); id != "" || rx != nil || tx != nil {
		t.Errorf("TaskNetwork of entries without networks = %q, %v, %v", id, rx, tx)
	}
	v, _, ok := TaskValues(nil, ts["c"])
	if !ok {
		t.Fatal("c: no sample")
	}
	equal(t, "c Memory", v.Memory, 1)
	absent(t, "c CPU", v.CPU)
}

func TestDecodeTaskStatsErrors(t *testing.T) {
	for _, body := range []string{"", "null", "[]", `{"a": 1}`, `{"a": {"read": 5}}`, "{"} {
		_, err := DecodeTaskStats(strings.NewReader(body))
		if err == nil {
			t.Errorf("%q: no error", body)
			continue
		}
		if msg := err.Error(); !strings.HasPrefix(msg, "decoding task stats: ") || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q is not one line naming what failed", body, msg)
		}
	}
	ts, err := DecodeTaskStats(strings.NewReader(`{}`))
	if err != nil || len(ts) != 0 {
		t.Errorf("{}: %v, %v; want an empty answer", ts, err)
	}
}

func TestPreCPU(t *testing.T) {
	ts := readTask(t, filepath.Join("testdata", "task_stats_v1_awsvpc.json"))
	s := ts[v1App].StatsResponse
	approx(t, "CPU", PreCPU(&s).CPU, 25)
	if v := PreCPU(&s); v.Memory != nil || v.NetRx != nil || v.DiskRead != nil {
		t.Errorf("PreCPU sets more than the CPU: %+v", v)
	}
	back := s
	back.PreRead = s.Read
	absent(t, "CPU when preread = read", PreCPU(&back).CPU)
	back.PreRead = s.Read.Add(-MaxGap - time.Second)
	absent(t, "CPU when preread is over 10 min before", PreCPU(&back).CPU)
	down := s
	down.PreCPUStats.CPUUsage.TotalUsage = s.CPUStats.CPUUsage.TotalUsage + 1
	absent(t, "CPU when the counter went down", PreCPU(&down).CPU)
	absent(t, "CPU of nil", PreCPU(nil).CPU)
}
