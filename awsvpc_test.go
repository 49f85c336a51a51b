package main

// Integration tests of awsvpc tasks on an EC2 container instance: the built
// binary on the host, real containers laid out as the ECS agent lays out
// awsvpc tasks (started with scripts/ecs-task.sh, as every test task), and a
// stand-in for the ECS agent's introspection API.

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// awsvpcTask starts an awsvpc task as the ECS agent does on an EC2 container
// instance: a pause container holding the task's network namespace on
// network (where the ECS agent has CNI attach the task's ENI), and the task's
// containers joined to it with --network container:<pause>, all with the
// task's ECS labels and task id. apps maps container name to STATSAPP_ADDR.
// It returns the pause container's address, the task's "ENI address", and
// the app containers' ids by name. A Fargate task is laid out the same way.
func awsvpcTask(t *testing.T, cluster, network, family, taskID string, apps map[string]string) (address string, ids map[string]string) {
	t.Helper()
	task := startNetnsTask(t, cluster, network, family, taskID, apps)
	return task.address, task.ids
}

// netnsTask is a task whose containers share the network namespace of its
// pause container.
type netnsTask struct {
	pause   string            // the pause container's id
	address string            // its address on the network: the task's
	ids     map[string]string // the app containers' ids by name
}

// startNetnsTask starts such a task (see awsvpcTask) and waits until each
// app serves its stats.
func startNetnsTask(t *testing.T, cluster, network, family, taskID string, apps map[string]string) netnsTask {
	t.Helper()
	pause := mustRunTask(t, cluster, family, "--container-name", "~internal~ecs~pause", "--task-id", taskID,
		"--publish", "none", "--", "--network", network, "--entrypoint", "/pause")
	task := netnsTask{pause: pause.id, address: containerAddress(t, pause.id, network), ids: map[string]string{}}
	for name, addr := range apps {
		task.ids[name] = mustRunTask(t, cluster, family, "--container-name", name, "--task-id", taskID,
			"--publish", "none", "--env", "STATSAPP_ADDR="+addr, "--", "--network", "container:"+pause.id).id
	}
	for _, addr := range apps {
		if err := waitURL("http://" + task.address + addr + "/stats"); err != nil {
			t.Fatal(err)
		}
	}
	return task
}

// TestAWSVPCTasks: on a container instance running awsvpc and bridge tasks,
// one run of the built binary with --key '{family}-{slot}' reports every
// task; with the ECS agent down, hung or answering garbage, the bridge tasks
// are still reported and the run ends within --timeout.
func TestAWSVPCTasks(t *testing.T) {
	needDocker(t)
	cluster := ownCluster(t, "awsvpc")
	network, _ := ownNetwork(t, cluster)

	// Two awsvpc tasks of family orders, the first with a sidecar serving stats on 9090.
	addr1, task1 := awsvpcTask(t, cluster, network, "orders", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", map[string]string{"orders": ":8080", "sidecar": ":9090"})
	addr2, task2 := awsvpcTask(t, cluster, network, "orders", "1d6c2a9f3e8b4da4c7f2b1a0e9d8c7b6", map[string]string{"orders": ":8080"})
	// Two bridge tasks of family web on dynamic host ports.
	var bridge []string
	for range 2 {
		tk := mustRunTask(t, cluster, "web", "--container-name", "web")
		bridge = append(bridge, "127.0.0.1:"+tk.port)
	}
	awsvpc := map[string]string{ // container id -> the address the plugin must scrape
		task1["orders"]: addr1 + ":8080", task1["sidecar"]: addr1 + ":9090", task2["orders"]: addr2 + ":8080",
	}
	for _, a := range append(slices.Collect(maps.Values(awsvpc)), bridge...) {
		if err := waitURL("http://" + a + "/stats"); err != nil {
			t.Fatal(err)
		}
	}

	agent := ordersAgent(t, addr1, task1, addr2, task2)

	const timeout = 2 * time.Second
	args := func(extra ...string) []string {
		return append([]string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + cluster,
			"--ecs-agent-url", agent.URL, "--key", "{family}-{slot}", "--timeout", timeout.String(),
			"--tempfile", filepath.Join(t.TempDir(), "state")}, extra...)
	}

	t.Run("every task in one run", func(t *testing.T) {
		r := runPlugin(t, nil, args()...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		keys := []string{"orders-1", "orders-2", "orders-3", "web-1", "web-2"}
		m := parseMetrics(t, r.stdout)
		assertKeys(t, m, keysFor(keys, gaugeMetrics))
		if got := m["gostats_scrape.discovery.errors"]; got != 0 {
			t.Errorf("discovery.errors %f, want 0", got)
		}
		if got := agent.Requests(); !slices.Equal(got, []string{"GET /v1/tasks"}) {
			t.Errorf("ECS agent requests %q, want one GET /v1/tasks", got)
		}

		// --list shows where each target was reached: the awsvpc containers at their task's address.
		r = runPlugin(t, nil, args("--list")...)
		want := map[string]string{}
		for id, a := range awsvpc {
			want[id[:12]] = a
		}
		got := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if strings.HasSuffix(line, " passed over: the pause container of an awsvpc task") {
				continue
			}
			if f := strings.Fields(line); len(f) >= 6 && f[5] == "ok" {
				got[f[1]] = f[3]
			} else {
				t.Errorf("--list line %q, want an ok target of this test", line)
			}
		}
		for id, a := range want {
			if got[id] != a {
				t.Errorf("container %s reached at %q, want %s (its task's address)", id, got[id], a)
			}
		}
		if len(got) != 5 {
			t.Errorf("--list:\n%s\nwant 5 targets", r.stdout)
		}
	})

	// The ECS agent's other faults are lib's TestRunECSAgentFaults; here a
	// hung agent, beside real tasks, costs half of --timeout and the awsvpc
	// tasks only.
	for _, tt := range []struct {
		name  string
		fault func()
		cause string
	}{
		{"agent hung", func() { agent.SetFault(standin.Hang) }, "no answer within 1s: the ECS agent is hung or overloaded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault()
			r := runPlugin(t, nil, args()...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			m := parseMetrics(t, r.stdout)
			assertKeys(t, m, keysFor([]string{"web-1", "web-2"}, gaugeMetrics))
			// The ECS agent's failure is a discovery error; the bridge tasks are all ok.
			health := map[string]float64{}
			for _, k := range []string{"targets.found", "targets.ok", "targets.failed", "discovery.errors"} {
				health[k] = m["gostats_scrape."+k]
			}
			if want := map[string]float64{"targets.found": 2, "targets.ok": 2, "targets.failed": 0, "discovery.errors": 1}; !maps.Equal(health, want) {
				t.Errorf("health %v, want %v", health, want)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			prefix := "warning: 3 awsvpc task containers skipped ("
			mid := "): cannot list the ECS agent's tasks at " + agent.URL + "/v1/tasks: " + tt.cause
			if len(lines) != 1 || !strings.HasPrefix(lines[0], prefix) || !strings.Contains(lines[0], mid) {
				t.Errorf("stderr:\n%s\nwant one line %s...%s...", r.stderr, prefix, mid)
			}
			if r.elapsed > 5*timeout {
				t.Errorf("run took %s with --timeout %s", r.elapsed, timeout)
			}
		})
	}
}

// ordersAgent starts the ECS agent's stand-in for the two awsvpc tasks of
// family orders (task 1: orders and sidecar; task 2: orders), and stops it
// when the test ends. Its answer is
// testdata/ecs/agent-v1-tasks.template.json with the containers' ids and
// their tasks' addresses filled in, nothing else: the plugin looks
// containers up by DockerId and takes the task's address; the container
// names in it stay as recorded. It lists the awsvpc tasks (and a stopped
// one), not the bridge tasks, which the plugin does not look up.
func ordersAgent(t *testing.T, addr1 string, task1 map[string]string, addr2 string, task2 map[string]string) *standin.Server {
	t.Helper()
	template, err := os.ReadFile("testdata/ecs/agent-v1-tasks.template.json")
	if err != nil {
		t.Fatal(err)
	}
	answer, err := standin.Fill(template, map[string]string{
		"ORDERS1_ID": task1["orders"], "SIDECAR1_ID": task1["sidecar"], "TASK1_ADDRESS": addr1,
		"ORDERS2_ID": task2["orders"], "TASK2_ADDRESS": addr2,
	})
	if err != nil {
		t.Fatal(err)
	}
	metadata, err := os.ReadFile("testdata/ecs/agent-v1-metadata.json")
	if err != nil {
		t.Fatal(err)
	}
	agent, err := standin.NewECSAgent("127.0.0.1:0", answer, metadata)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Close() })
	return agent
}
