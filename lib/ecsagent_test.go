package mpecsgostats

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// The awsvpc capture, testdata/ecs/containers-awsvpc.json: a real
// /containers/json answer from dockerd for ECS-labelled containers laid out
// as the ECS agent lays out awsvpc tasks (each task's containers in the
// network namespace of its pause container), and one bridge task:
//
//	ecs-web-3-web-e8c6…                 bridge, 8080 published (33675 on 0.0.0.0, 33606 on ::)
//	ecs-orders-7-orders-e6a4…           container:<pause 8c98…>, task 1d6c…
//	ecs-orders-7-internalecspause-a8b6… the pause container 8c98…
//	ecs-orders-7-sidecar-d4a6…          container:<pause 8e71…>, task 0c5b…
//	ecs-orders-7-orders-c2e8…           container:<pause 8e71…>, task 0c5b…
//	ecs-orders-7-internalecspause-f0d4… the pause container 8e71…
//
// testdata/ecs/agent-v1-tasks.json is the ECS agent's GET /v1/tasks answer
// for them, as the agent encodes it (one line; the pause containers are the
// agent's own and not listed): task 0c5b… at 10.0.3.61 (orders 8080/tcp,
// sidecar 9090/tcp and 8125/udp), task 1d6c… at 10.0.3.84 (orders 8080/tcp),
// the bridge task, and a STOPPED task not yet cleaned up.

// TestAWSVPCContainers: Docker gives the bridge task its target; the
// awsvpc task containers are set apart for the ECS agent; the pause
// containers are passed over.
func TestAWSVPCContainers(t *testing.T) {
	containers := loadContainers(t, "ecs/containers-awsvpc.json")
	f := dockerSource{}.targetsFrom(containers)
	var names []string
	for _, tg := range f.targets {
		names = append(names, tg.ContainerName)
	}
	names = append(names, "|")
	for _, c := range awsvpcContainers(containers) {
		names = append(names, containerName(c))
	}
	names = append(names, "|")
	for _, p := range f.passed {
		names = append(names, p.name+": "+p.why)
	}
	want := []string{"ecs-web-3-web-e8c6b0a1f2d3c4b5a601", "|",
		"ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001", "ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001", "ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701", "|",
		"ecs-orders-7-internalecspause-a8b6c4d2e0f8a6b4c201: the pause container of an awsvpc task",
		"ecs-orders-7-internalecspause-f0d4aee5c0c5e0b1a701: the pause container of an awsvpc task"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("targets | awsvpc | passed over:\n got %q\nwant %q", names, want)
	}
}

// ecsAgentStandIn starts a stand-in for the ECS agent's introspection API
// (http://127.0.0.1:51678 on a container instance) serving
// testdata/ecs/agent-v1-tasks.json byte for byte.
func ecsAgentStandIn(t *testing.T) *standin.Server {
	t.Helper()
	s, err := standin.NewECSAgent("127.0.0.1:0", readTestdata(t, "ecs/agent-v1-tasks.json"), readTestdata(t, "ecs/agent-v1-metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestECSAgentTargets(t *testing.T) {
	awsvpc := awsvpcContainers(loadContainers(t, "ecs/containers-awsvpc.json"))
	orders2 := ecsPlace{"b1015afe968d", "ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001", "orders", "7", "orders", "1d6c2a9f3e8b4da4c7f2b1a0e9d8c7b6", "10.0.3.84:8080", 0, true}
	sidecar := ecsPlace{"2043217b5a86", "ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001", "orders", "7", "sidecar", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "10.0.3.61:9090", 0, true}
	orders1 := ecsPlace{"cc28fff97e8e", "ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701", "orders", "7", "orders", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "10.0.3.61:8080", 0, true}
	gone := awsvpc[0]
	gone.ID = "0123456789ab" + gone.ID[12:]

	tests := []struct {
		name       string
		agent      ecsAgent
		containers []engineapi.Summary
		want       []ecsPlace
		warnings   []string
	}{
		{"every TCP port the agent lists, at the task's address", ecsAgent{}, awsvpc, []ecsPlace{orders2, sidecar, orders1}, nil},
		{"--container-port narrows", ecsAgent{ContainerPort: 8080}, awsvpc, []ecsPlace{orders2, orders1}, nil},
		{"a container the agent does not list", ecsAgent{}, []engineapi.Summary{gone, awsvpc[1]}, []ecsPlace{sidecar},
			[]string{"container ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001 0123456789ab skipped: the ECS agent at %s does not list it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ecsAgentStandIn(t)
			tt.agent.URL, tt.agent.hc, tt.agent.timeout = srv.URL, newHTTPClient(time.Second, 128), time.Second
			got, _, warnings, err := tt.agent.targets(context.Background(), tt.containers)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ecsPlacesOf(got), tt.want) {
				t.Errorf("targets:\n got %+v\nwant %+v", ecsPlacesOf(got), tt.want)
			}
			var want []string
			for _, w := range tt.warnings {
				want = append(want, fmt.Sprintf(w, srv.URL+"/v1/tasks"))
			}
			if !reflect.DeepEqual(warnings, want) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, want)
			}
			if r := srv.Requests(); !reflect.DeepEqual(r, []string{"GET /v1/tasks"}) {
				t.Errorf("requests %q, want one GET /v1/tasks", r)
			}
		})
	}
}

// awsvpcFleet is two bridge tasks on loopback stats endpoints, and the
// awsvpc tasks of the capture (which these tests never scrape: their
// recorded addresses are not this machine's).
func awsvpcFleet(t *testing.T) []engineapi.Summary {
	awsvpc := awsvpcContainers(loadContainers(t, "ecs/containers-awsvpc.json"))
	_, cs := fleetContainers(t, fleet(t, 2, func(int) http.Handler { return realHandler }))
	return append(cs, awsvpc...)
}

// dockerWith serves containers, as the plugin decoded them from recorded
// answers, from the Docker Engine API stand-in.
func dockerWith(t *testing.T, containers []engineapi.Summary) (host string, requests func() []string) {
	t.Helper()
	body, err := json.Marshal(containers)
	if err != nil {
		t.Fatal(err)
	}
	d := &standin.Docker{Containers: body}
	return d.Start(t, "unix"), d.Requests
}

// TestRunAWSVPCDefaultKey: with the default --key {port}, the awsvpc tasks
// Docker lists cost one warning a run saying which key to use; the ECS agent
// is asked once, and the Docker daemon once.
func TestRunAWSVPCDefaultKey(t *testing.T) {
	host, dockerRequests := dockerWith(t, awsvpcFleet(t))
	agent := ecsAgentStandIn(t)
	run := runPlugin(t, "--docker-host", host, "--ecs-agent-url", agent.URL, "--tempfile", filepath.Join(t.TempDir(), "state"))
	want := `warning: 3 awsvpc task targets skipped (ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001, ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001, ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701): ` +
		`--key "{port}" uses {port}, but awsvpc tasks publish no host port; use --key '{family}-{slot}'`
	if run.code != 0 || len(run.keys) != 2*gaugesPerTask() || !reflect.DeepEqual(run.stderr, []string{want}) {
		t.Errorf("exit %d, %d keys, stderr %q\nwant the gauges of the 2 bridge tasks and %q", run.code, len(run.keys), run.stderr, want)
	}
	if r := agent.Requests(); !reflect.DeepEqual(r, []string{"GET /v1/tasks"}) {
		t.Errorf("ECS agent requests %q, want one GET /v1/tasks", r)
	}
	if r := dockerRequests(); !reflect.DeepEqual(r, []string{"GET /v1.41/containers/json"}) {
		t.Errorf("Docker daemon requests %q", r)
	}
}

// TestRunNoAWSVPCNoAgent: without awsvpc tasks the ECS agent is not asked.
func TestRunNoAWSVPCNoAgent(t *testing.T) {
	_, cs := fleetContainers(t, fleet(t, 1, func(int) http.Handler { return realHandler }))
	host, _ := dockerWith(t, cs)
	agent := ecsAgentStandIn(t)
	run := runPlugin(t, "--docker-host", host, "--ecs-agent-url", agent.URL, "--key", "{family}-{slot}", "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != gaugesPerTask() || len(run.stderr) != 0 || len(agent.Requests()) != 0 {
		t.Errorf("exit %d, %d keys, stderr %q, ECS agent requests %q", run.code, len(run.keys), run.stderr, agent.Requests())
	}
}

// TestRunECSAgentFaults: an ECS agent that is down, hung, failing or
// answering garbage costs the awsvpc tasks one warning naming its URL; the
// bridge tasks are still reported, within --timeout: the agent is given half
// of it.
func TestRunECSAgentFaults(t *testing.T) {
	const timeout = time.Second
	skipped := "warning: 3 awsvpc task containers skipped (ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001, ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001, ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701): " +
		"cannot list the ECS agent's tasks at %s/v1/tasks: "
	tests := []struct {
		name  string
		fault func(s *standin.Server)
		cause string
	}{
		{"down", nil, // a port of the test's own where nothing listens: a closed stand-in's could be another's again
			"connection refused: is the ECS agent running with its introspection API? from inside a container, set --ecs-agent-url to an address of the host"},
		{"hung", func(s *standin.Server) { s.SetFault(standin.Hang) }, "no answer within 500ms: the ECS agent is hung or overloaded"},
		{"500", func(s *standin.Server) { s.SetFault(standin.Status500) },
			"unexpected status 500 Internal Server Error: is --ecs-agent-url the ECS agent's introspection API?"},
		{"garbage", func(s *standin.Server) { s.SetFault(standin.Garbage) },
			"invalid answer: invalid character '\\x00' looking for beginning of value: is --ecs-agent-url the ECS agent's introspection API?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, _ := dockerWith(t, awsvpcFleet(t))
			url := fmt.Sprintf("http://127.0.0.1:%d", refusingPort(t))
			if tt.fault != nil {
				agent := ecsAgentStandIn(t)
				tt.fault(agent)
				url = agent.URL
			}
			run := runPlugin(t, "--docker-host", host, "--ecs-agent-url", url, "--key", "{family}-{slot}",
				"--timeout", timeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state"))
			want := fmt.Sprintf(skipped, url) + tt.cause
			if run.code != 0 || len(run.keys) != 2*gaugesPerTask() || !reflect.DeepEqual(run.stderr, []string{want}) {
				t.Errorf("exit %d, %d keys, stderr %q\nwant the gauges of the 2 bridge tasks and %q", run.code, len(run.keys), run.stderr, want)
			}
			for _, k := range run.keys {
				if !strings.HasPrefix(k, "gostats.web-") {
					t.Errorf("key %s, want the bridge tasks' gostats.web-<slot>.*", k)
				}
			}
			if run.wall > 5*timeout {
				t.Errorf("run took %s with --timeout %s", run.wall, timeout)
			}
		})
	}
}
