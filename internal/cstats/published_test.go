package cstats

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
)

// published is where the published /task/stats answers and the /task
// answers of the same tasks are (their SOURCES.md pairs them): read in
// place, never copied here.
const published = "../../../shared/published/stats"

// taskMeta is what the tests take of a task metadata /task answer.
type taskMeta struct {
	Limits *struct {
		CPU    float64
		Memory uint64
	}
	Containers []struct {
		DockerID   string `json:"DockerId"`
		DockerName string
		Limits     struct {
			CPU    float64 // CPU shares: not a limit
			Memory uint64
		}
	}
}

// limitInputs is the LimitInputs of container id of a task as its stats
// entry e and its task answer m tell them. The container is found by Docker
// id, else by its Docker name (name, the entry's "name") up to the last "-"
// (the awsdocs pair are two runs of one task definition, with other ids).
func limitInputs(t *testing.T, m taskMeta, id, name string, e *TaskStat) LimitInputs {
	t.Helper()
	in := StatsLimitInputs(&e.StatsResponse)
	if m.Limits != nil {
		in.TaskCPUs, in.TaskMemoryMiB = m.Limits.CPU, m.Limits.Memory
	}
	stem := func(name string) string {
		name = strings.TrimPrefix(name, "/")
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			return name[:i]
		}
		return name
	}
	for _, c := range m.Containers {
		if c.DockerID == id {
			in.MemoryMiB = c.Limits.Memory
			return in
		}
	}
	for _, c := range m.Containers {
		if stem(c.DockerName) == stem(name) {
			in.MemoryMiB = c.Limits.Memory
			return in
		}
	}
	t.Fatalf("container %s (%s) is not in the task answer", id, name)
	return in
}

// pubContainer is what TestPublishedTaskStats expects of one container.
type pubContainer struct {
	id string // a prefix of the id
	// CPU from precpu_stats in %, the working set, the limits
	cpu, cpuLimit float64
	memory        uint64
	memoryLimit   uint64 // 0: absent
}

func TestPublishedTaskStats(t *testing.T) {
	if _, err := os.Stat(filepath.Join(published, "SOURCES.md")); err != nil {
		testenv.SkipUnlessCI(t, "the published task stats are not at "+published)
	}
	for _, f := range []struct {
		stats, meta string
		// entries that are samples, and those that are not (null, {})
		samples, none int
		containers    []pubContainer
	}{
		{stats: "awsdocs_task_stats.json", meta: "awsdocs_task_metadata.json", samples: 2, containers: []pubContainer{
			// curl: 379075681 − 378825197 = 250484 ns over
			// 32.512771349 − 31.510597736 = 1.002173613 s; memory 1814528 −
			// total_inactive_file 0; limits: none of its own but Limits.Memory
			// 128 MiB = 134217728 (its Limits.CPU 10 is shares), no task limits,
			// online_cpus 2 → 200 %
			{"5fc21e5b", 250484.0 / 1002173613 * 100, 200, 1814528, 134217728},
			// the pause container: 177232665 − 177232665 = 0 ns; 532480 − 0;
			// Limits.Memory 0, hierarchical_memory_limit 2^63 − 4096: none
			{"01999f2e", 0, 200, 532480, 0},
		}},
		{stats: "datadog_stats_linux_v4.json", meta: "datadog_metadata_v4.json", samples: 2, containers: []pubContainer{
			// dd-agent: 4817594472 − 4731035320 = 86559152 ns over
			// 45.077342978 − 35.076984286 = 10.000358692 s; 160886784 −
			// total_inactive_file 3919872 = 156966912; task Limits CPU 1 → 100 %,
			// Memory 3072 MiB = 3221225472 (the stats limit 922337 is not an
			// input)
			{"67cd8a22b533459696d4ccab5278e009-2860414825", 86559152.0 / 10000358692 * 100, 100, 156966912, 3221225472},
			// apmtest-ping: 977249587 − 970577025 = 6672562 ns over
			// 44.895193503 − 34.895391778 = 9.999801725 s; 34865152 − 0
			{"67cd8a22b533459696d4ccab5278e009-3344678718", 6672562.0 / 9999801725 * 100, 100, 34865152, 3221225472},
		}},
		{stats: "ecs_exporter_ec2_task_stats.json", meta: "ecs_exporter_ec2_task_metadata.json", samples: 2, none: 1, containers: []pubContainer{
			// ecs-exporter, cgroup v2: 331125000 − 325963000 = 5162000 ns over
			// 07.856950259 − 06.853724878 = 1.003225381 s; 65249280 −
			// inactive_file 17641472 = 47607808; Limits.Memory 256 MiB, no task
			// limits, online_cpus 2
			{"01cf1f32", 5162000.0 / 1003225381 * 100, 200, 47607808, 268435456},
			// prometheus: 566060000 − 566060000 = 0; 60981248 − 11046912 = 49934336
			{"6b80adab", 0, 200, 49934336, 268435456},
		}},
		{stats: "ecs_exporter_fargate_task_stats.json", meta: "ecs_exporter_fargate_task_metadata.json", samples: 2, none: 1, containers: []pubContainer{
			// prometheus: 932439492 − 925246189 = 7193303 ns over
			// 49.186680233 − 39.185738849 = 10.000941384 s; 127934464 −
			// total_inactive_file 52383744 = 75550720; task Limits CPU 0.25 →
			// 25 %, Memory 512 MiB = 536870912 (stats limit 2^63 − 4096)
			{"bae32def0ab64f06818e8862e58f8d6d-1819985369", 7193303.0 / 10000941384 * 100, 25, 75550720, 536870912},
			// ecs-exporter: 322633383 − 242770940 = 79862443 ns over
			// 49.406170373 − 39.406479661 = 9.999690712 s; 84111360 − 39100416
			{"bae32def0ab64f06818e8862e58f8d6d-4159844948", 79862443.0 / 9999690712 * 100, 25, 45010944, 536870912},
		}},
		{stats: "mackerel_container_agent_stats_ec2_awsvpc.json", meta: "mackerel_container_agent_metadata_ec2_awsvpc.json", samples: 2, containers: []pubContainer{
			// the agent: 3940101032 − 3940101032 = 0 ns; 83554304 − 31113216
			// = 52441088; Limits.Memory 128 MiB; task Limits CPU 0.25 → 25 %
			{"ffffffff", 0, 25, 52441088, 134217728},
			// pause: 0 ns; 1363968 − 782336 = 581632; Limits.Memory 0, so the
			// task's 256 MiB = 268435456
			{"eeeeeeee", 0, 25, 581632, 268435456},
		}},
		{stats: "mackerel_container_agent_stats_ec2_bridge.json", meta: "mackerel_container_agent_metadata_ec2_bridge.json", samples: 1, containers: []pubContainer{
			// 3967195813 − 3967111669 = 84144 ns over 31.046794382 −
			// 30.03285625 = 1.013938132 s; 83812352 − 30167040 = 53645312
			{"ffffffff", 84144.0 / 1013938132 * 100, 25, 53645312, 134217728},
		}},
		{stats: "mackerel_container_agent_stats_ec2_host.json", meta: "mackerel_container_agent_metadata_ec2_host.json", samples: 1, containers: []pubContainer{
			// 804709974 − 804140304 = 569670 ns over 57.820081697 −
			// 56.809270128 = 1.010811569 s; 3244032 − 159744 = 3084288;
			// Limits.Memory 128 MiB (the stats' hierarchical limit 64 MiB comes
			// after it)
			{"ffffffff", 569670.0 / 1010811569 * 100, 25, 3084288, 134217728},
		}},
		{stats: "mackerel_container_agent_stats_fargate.json", meta: "mackerel_container_agent_metadata_fargate.json", samples: 2, containers: []pubContainer{
			// as ec2_awsvpc (the same bytes)
			{"ffffffff", 0, 25, 52441088, 134217728},
		}},
		{stats: "otel_task_stats.json", meta: "otel_task_metadata.json", samples: 2, none: 1, containers: []pubContainer{
			// nginx300: 276034312 − 276034312 = 0; 2658304 − 12288 = 2646016;
			// Limits.Memory 128 MiB; no task limits: online_cpus 2
			{"4a984770", 0, 200, 2646016, 134217728},
			// nginx100 (Limits.CPU 100: shares): 2568192 − 12288 = 2555904
			{"5302b3fa", 0, 200, 2555904, 134217728},
		}},
		{stats: "otel_task_stats2.json", meta: "otel_task_metadata2.json", samples: 1, none: 1, containers: []pubContainer{
			// essential: 201366568 − 201366568 = 0; 974848 − 0; task Limits
			// CPU 0.25, Memory 512 MiB
			{"476e366a13b3407882d611ede16001aa-1624567963", 0, 25, 974848, 536870912},
		}},
	} {
		t.Run(strings.TrimSuffix(f.stats, ".json"), func(t *testing.T) {
			ts := readTask(t, filepath.Join(published, f.stats))
			b, err := os.ReadFile(filepath.Join(published, f.meta))
			if err != nil {
				t.Fatal(err)
			}
			var m taskMeta
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", f.meta, err)
			}
			// the entries' Docker names, which TaskStat does not keep
			b, err = os.ReadFile(filepath.Join(published, f.stats))
			if err != nil {
				t.Fatal(err)
			}
			var names map[string]*struct{ Name string }
			if err := json.Unmarshal(b, &names); err != nil {
				t.Fatalf("%s: %v", f.stats, err)
			}

			// null and {} cost only their container
			samples, none := 0, 0
			for id, e := range ts {
				v, _, ok := TaskValues(nil, e)
				if !ok {
					none++
					if e != nil && !e.Read.IsZero() {
						t.Errorf("%s: an entry with a read time is no sample", id)
					}
					continue
				}
				samples++
				if v.CPU == nil || v.Memory == nil {
					t.Errorf("%s: CPU %v, memory %v: want both", id, v.CPU, v.Memory)
				}
			}
			if samples != f.samples || none != f.none {
				t.Errorf("%d samples and %d null or {}, want %d and %d", samples, none, f.samples, f.none)
			}

			for _, c := range f.containers {
				id := ""
				for k := range ts {
					if strings.HasPrefix(k, c.id) {
						id = k
					}
				}
				if id == "" {
					t.Fatalf("no entry %s…", c.id)
				}
				v, _, ok := TaskValues(nil, ts[id])
				if !ok {
					t.Fatalf("%s: no sample", c.id)
				}
				approx(t, c.id+" CPU", v.CPU, c.cpu)
				equal(t, c.id+" Memory", v.Memory, c.memory)
				l := ResolveLimits(limitInputs(t, m, id, names[id].Name, ts[id]))
				approx(t, c.id+" CPU limit", l.CPU, c.cpuLimit)
				if c.memoryLimit == 0 {
					absent(t, c.id+" Memory limit", l.Memory)
				} else {
					equal(t, c.id+" Memory limit", l.Memory, c.memoryLimit)
				}
			}
		})
	}
}

// TestPublishedNetwork: the network of the published answers, per
// container where each has its own (bridge), once per task where the ENI
// is repeated (Fargate), none where Docker does not see it (EC2 awsvpc,
// host).
func TestPublishedNetwork(t *testing.T) {
	if _, err := os.Stat(filepath.Join(published, "SOURCES.md")); err != nil {
		testenv.SkipUnlessCI(t, "the published task stats are not at "+published)
	}
	read := func(name string) TaskStats { return readTask(t, filepath.Join(published, name)) }

	// otel bridge: nginx300 has eth0 (rx 2156) and eth1 (rx 100) → 2256, tx
	// 0 + 0; its network_rate_stats 101.091 / 55.322
	ts := read("otel_task_stats.json")
	id := "4a984770705c4f4f95e1267af3623ab0923c602b7cd4ed7d77b7f8356537337f"
	v, cur, _ := TaskValues(nil, ts[id])
	equal(t, "nginx300 rx total", cur.NetRx, 2256)
	equal(t, "nginx300 tx total", cur.NetTx, 0)
	approx(t, "nginx300 NetRx", v.NetRx, 101.091)
	approx(t, "nginx300 NetTx", v.NetTx, 55.322)
	// blkio Read 3452928 on one device, Write 0
	equal(t, "nginx300 disk read total", cur.DiskRead, 3452928)
	equal(t, "nginx300 disk write total", cur.DiskWrite, 0)

	// Fargate: both containers carry eth1 (129045374 and 129046293, read at
	// different times); the task's is the smaller id's (…-1819985369,
	// prometheus): rates 2464.6679803462657 / 1173.289548516495
	ts = read("ecs_exporter_fargate_task_stats.json")
	tid, rx, tx := TaskNetwork(ts, nil)
	if tid != "bae32def0ab64f06818e8862e58f8d6d-1819985369" {
		t.Errorf("Fargate TaskNetwork id = %s", tid)
	}
	approx(t, "Fargate task NetRx", rx, 2464.6679803462657)
	approx(t, "Fargate task NetTx", tx, 1173.289548516495)
	// blkio Read 23793664 + 65409024 = 89202688 on two devices; Write 0 + 0
	_, cur, _ = TaskValues(nil, ts[tid])
	equal(t, "prometheus disk read total", cur.DiskRead, 89202688)
	equal(t, "prometheus disk write total", cur.DiskWrite, 0)

	// cgroup v2, lower-case ops: ecs-exporter read 60960768, write 57344
	ts = read("ecs_exporter_ec2_task_stats.json")
	_, cur, _ = TaskValues(nil, ts["01cf1f3208005cda71d5ac936ded65d2ecc0a8cc8ff8a82d2e00410bf4fbbd6d"])
	equal(t, "v2 disk read total", cur.DiskRead, 60960768)
	equal(t, "v2 disk write total", cur.DiskWrite, 57344)

	// EC2 awsvpc and host mode: no networks, no rates
	for _, name := range []string{"mackerel_container_agent_stats_ec2_awsvpc.json", "mackerel_container_agent_stats_ec2_host.json"} {
		ts = read(name)
		if id, rx, tx := TaskNetwork(ts, nil); id != "" || rx != nil || tx != nil {
			t.Errorf("%s: TaskNetwork = %q, %v, %v; want none", name, id, rx, tx)
		}
		for id, e := range ts {
			_, cur, _ := TaskValues(nil, e)
			absent(t, name+" "+id[:8]+" rx total", cur.NetRx)
		}
	}
	// capitalised ops over four devices: the agent's Read 55185408 × 4 =
	// 220741632, Write 29016064 + 23384064 × 3 = 99168256
	ts = read("mackerel_container_agent_stats_ec2_awsvpc.json")
	_, cur, _ = TaskValues(nil, ts["ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"])
	equal(t, "agent disk read total", cur.DiskRead, 220741632)
	equal(t, "agent disk write total", cur.DiskWrite, 99168256)
}
