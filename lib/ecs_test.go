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

	"github.com/docker/docker/api/types/container"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// taskMetadataStandIn starts a stand-in for the task metadata endpoint v4
// (what ECS_CONTAINER_METADATA_URI_V4 points at in an ECS task) serving the
// recorded answer testdata/ecs/<name>, byte for byte.
func taskMetadataStandIn(t *testing.T, name string) *standin.Server {
	t.Helper()
	s, err := standin.NewTaskMetadata("127.0.0.1:0", readTestdata(t, filepath.Join("ecs", name)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ecsPlace is what tells targets apart in these tests.
type ecsPlace struct {
	ID, Name, Family, Revision, Container, Task, Addr string
	HostPort                                          uint16
	AWSVPC                                            bool
}

func ecsPlaceOf(t Target) ecsPlace {
	return ecsPlace{shortID(t.ContainerID), t.ContainerName, t.Family, t.Revision, t.ECSContainer, t.TaskID, t.Addr(), t.HostPort, t.AWSVPC}
}

func ecsPlacesOf(ts []Target) []ecsPlace {
	var ps []ecsPlace
	for _, t := range ts {
		ps = append(ps, ecsPlaceOf(t))
	}
	return ps
}

func TestTaskMetadataTargets(t *testing.T) {
	// testdata/ecs/task-metadata-v4-fargate.json: task shop:12 on Fargate (awsvpc) with
	//   web       RUNNING  8080/tcp  labels tier=front
	//   api       RUNNING  9090/tcp  labels tier=back
	//   statsd    RUNNING  8125/udp
	//   migrate   STOPPED  9091/tcp
	//   mackerel-container-agent RUNNING, no ports
	fargateTask := "b3f8e0c2a7d94f51a6e2c4d9f1a0b7e3"
	web := ecsPlace{"b3f8e0c2a7d9", "web", "shop", "12", "web", fargateTask, "127.0.0.1:8080", 0, true}
	api := ecsPlace{"b3f8e0c2a7d9", "api", "shop", "12", "api", fargateTask, "127.0.0.1:9090", 0, true}
	// task-metadata-v4-ec2-awsvpc.json: orders:7 on EC2 in awsvpc; its pause container
	// (CNI_PAUSE, RESOURCES_PROVISIONED) is listed too.
	orders := ecsPlace{"a9c4e2b07d16", "ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701", "orders", "7", "orders", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "127.0.0.1:8080", 0, true}
	// task-metadata-v4-ec2-bridge.json: web:3 in bridge mode, 8080 published on 0.0.0.0 and :: as 32769.
	bridgeWeb := ecsPlace{"f1e2d3c4b5a6", "ecs-web-3-web-e8c6b0a1f2d3c4b5a601", "web", "3", "web", "7e2d9c4b1a8f4e63b5d0c9a8f7e6d5c4", "172.17.0.3:8080", 32769, false}

	tests := []struct {
		name   string
		answer string
		s      TaskMetadata
		want   []ecsPlace
	}{
		{"fargate: running NORMAL containers with a TCP port", "task-metadata-v4-fargate.json", TaskMetadata{}, []ecsPlace{web, api}},
		{"EC2 awsvpc: not the pause container", "task-metadata-v4-ec2-awsvpc.json", TaskMetadata{}, []ecsPlace{orders}},
		{"EC2 bridge: a port listed twice is one target, at the container's address", "task-metadata-v4-ec2-bridge.json", TaskMetadata{}, []ecsPlace{bridgeWeb}},
		{"--container-port", "task-metadata-v4-fargate.json", TaskMetadata{ContainerPort: 9090}, []ecsPlace{api}},
		{"--container-port of a UDP port", "task-metadata-v4-fargate.json", TaskMetadata{ContainerPort: 8125}, nil},
		{"--name regular expression", "task-metadata-v4-fargate.json", TaskMetadata{Names: []string{"^a.i$"}}, []ecsPlace{api}},
		{"--name with docker's leading slash", "task-metadata-v4-fargate.json", TaskMetadata{Names: []string{"^/web"}}, []ecsPlace{web}},
		{"--name matches the task definition's container name too", "task-metadata-v4-ec2-awsvpc.json", TaskMetadata{Names: []string{"^orders$"}}, []ecsPlace{orders}},
		{"--name repeated: either", "task-metadata-v4-fargate.json", TaskMetadata{Names: []string{"^web$", "^api$"}}, []ecsPlace{web, api}},
		{"--label KEY=VALUE", "task-metadata-v4-fargate.json", TaskMetadata{Labels: []string{"tier=back"}}, []ecsPlace{api}},
		{"--label KEY", "task-metadata-v4-fargate.json", TaskMetadata{Labels: []string{"tier"}}, []ecsPlace{web, api}},
		{"--label repeated: both", "task-metadata-v4-fargate.json", TaskMetadata{Labels: []string{"tier", "com.amazonaws.ecs.container-name=web"}}, []ecsPlace{web}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taskMetadataStandIn(t, tt.answer)
			tt.s.URL = srv.URL
			got, warnings, err := tt.s.Targets(context.Background(), newHTTPClient(time.Second), time.Second)
			if err != nil || len(warnings) > 0 {
				t.Fatalf("err %v, warnings %q", err, warnings)
			}
			if !reflect.DeepEqual(ecsPlacesOf(got), tt.want) {
				t.Errorf("targets:\n got %+v\nwant %+v", ecsPlacesOf(got), tt.want)
			}
			if r := srv.Requests(); len(r) != 1 || !strings.HasSuffix(r[0], "/task") {
				t.Errorf("requests %q, want one GET of <base>/task", r)
			}
		})
	}
}

// TestRunTaskMetadata runs the plugin with --source task-metadata beside a
// stand-in for the endpoint: the default key is the container's name in the
// task definition.
func TestRunTaskMetadata(t *testing.T) {
	srv := taskMetadataStandIn(t, "task-metadata-v4-fargate.json")
	t.Setenv(envTaskMetadata, srv.URL)
	run := runPlugin(t, "--source", "task-metadata", "--list", "--timeout", "300ms", "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.stderr) != 0 || len(run.keys) != 2 {
		t.Fatalf("exit %d, stderr %q, stdout %q", run.code, run.stderr, run.keys)
	}
	for i, want := range [][]string{
		{"web", "b3f8e0c2a7d9", "shop", "127.0.0.1:8080", "web"},
		{"api", "b3f8e0c2a7d9", "shop", "127.0.0.1:9090", "api"},
	} {
		if got := strings.Fields(run.keys[i]); !reflect.DeepEqual(got[:5], want) {
			t.Errorf("--list line %d: %q, want it to start %q", i, run.keys[i], want)
		}
	}
	// --task-metadata-url overrides the variable.
	t.Setenv(envTaskMetadata, "http://127.0.0.1:9/nothing")
	run = runPlugin(t, "--source", "task-metadata", "--task-metadata-url", srv.URL, "--list", "--timeout", "300ms",
		"--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != 2 {
		t.Errorf("with --task-metadata-url: exit %d, stderr %q, stdout %q", run.code, run.stderr, run.keys)
	}
}

// TestRunTaskMetadataFaults: an endpoint that is missing, down, hung, failing
// or answering garbage ends the run with exit 1 and one line naming the URL,
// as an unreachable Docker daemon does.
func TestRunTaskMetadataFaults(t *testing.T) {
	const timeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		fault func(s *standin.Server)
		want  string // %s: the task URL
	}{
		{"down", func(s *standin.Server) { s.Close() },
			"cannot read task metadata at %s: connection refused: the endpoint is reached only from inside an ECS task; set --task-metadata-url if it is elsewhere"},
		{"hung", func(s *standin.Server) { s.SetFault(standin.Hang) }, "cannot read task metadata at %s: no answer within 300ms"},
		{"500", func(s *standin.Server) { s.SetFault(standin.Status500) }, "cannot read task metadata at %s: unexpected status 500 Internal Server Error"},
		{"garbage", func(s *standin.Server) { s.SetFault(standin.Garbage) },
			"cannot read task metadata at %s: invalid answer: invalid character '\\x00' looking for beginning of value"},
		{"JSON of another endpoint", nil, "cannot read task metadata at %s: no TaskARN and no Containers: not a task metadata v4 answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := "task-metadata-v4-fargate.json"
			if tt.fault == nil {
				answer = "../stats.json" // a golang-stats-api-handler answer
			}
			srv := taskMetadataStandIn(t, answer)
			if tt.fault != nil {
				tt.fault(srv)
			}
			t.Setenv(envTaskMetadata, srv.URL)
			run := runPlugin(t, "--source", "task-metadata", "--timeout", timeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state"))
			want := pluginName + ": " + fmt.Sprintf(tt.want, srv.URL+"/task")
			if run.code != 1 || len(run.keys) != 0 || len(run.stderr) != 1 || run.stderr[0] != want {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 1 and %q", run.code, run.keys, run.stderr, want)
			}
			if run.wall > 5*timeout+2*time.Second {
				t.Errorf("run took %s with --timeout %s", run.wall, timeout)
			}
		})
	}

	t.Run("no endpoint", func(t *testing.T) {
		t.Setenv(envTaskMetadata, "")
		run := runPlugin(t, "--source", "task-metadata", "--tempfile", filepath.Join(t.TempDir(), "state"))
		want := pluginName + ": --source task-metadata: ECS_CONTAINER_METADATA_URI_V4 is not set and no --task-metadata-url is given; " +
			"run the plugin in an ECS task (Fargate platform 1.4.0 or later, ECS agent 1.39.0 or later on EC2), such as from mackerel-container-agent"
		if run.code != 1 || len(run.stderr) != 1 || run.stderr[0] != want {
			t.Errorf("exit %d, stderr %q\nwant exit 1 and %q", run.code, run.stderr, want)
		}
	})
}

func TestParseOptionsSource(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	t.Setenv(envTaskMetadata, "http://169.254.170.2/v4/abc")
	tests := []struct {
		args    []string
		key     string
		wantErr string
	}{
		{nil, "{port}", ""},
		{[]string{"--source", "task-metadata"}, "{container}", ""},
		{[]string{"--source", "task-metadata", "--key", "{family}-{slot}"}, "{family}-{slot}", ""},
		{[]string{"--source", "task-metadata", "--key", ""}, "", `--key "": no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'`},
		{[]string{"--source", "task-metadata", "--docker-host", "unix:///x.sock"}, "", "--docker-host: only with --source docker"},
		{[]string{"--source", "task-metadata", "--address", "container-ip"}, "", "--address: only with --source docker"},
		{[]string{"--source", "task-metadata", "--host", "127.0.0.2"}, "", "--host: only with --source docker"},
		{[]string{"--source", "task-metadata", "--ecs-agent-url", "http://127.0.0.1:51678"}, "", "--ecs-agent-url: only with --source docker"},
		{[]string{"--task-metadata-url", "http://127.0.0.1:1/v4/x"}, "", "--task-metadata-url: only with --source task-metadata"},
		{[]string{"--source", "task-metadata", "--name", "web["}, "", "--name \"web[\": not a regular expression: error parsing regexp: missing closing ]: `[`"},
		{[]string{"--source", "fargate"}, "", "Invalid value `fargate' for option `--source'. Allowed values are: docker or task-metadata"},
	}
	for _, tt := range tests {
		var stdout, stderr strings.Builder
		o, code, done := parseOptions(tt.args, &stdout, &stderr)
		if tt.wantErr != "" {
			if want := pluginName + ": " + tt.wantErr + "\n"; code != 2 || !done || stderr.String() != want {
				t.Errorf("%q: exit %d, stderr %q\nwant exit 2 and %q", tt.args, code, stderr.String(), want)
			}
			continue
		}
		if done || o.Key != tt.key || string(o.keyTemplate) != tt.key {
			t.Errorf("%q: done %v, key %q (stderr %q), want %q", tt.args, done, o.Key, stderr.String(), tt.key)
		}
	}
}

// TestPortKeyOnAWSVPC: the default --key {port} names no awsvpc target;
// that is one warning a run, however many such targets, saying what to use.
func TestPortKeyOnAWSVPC(t *testing.T) {
	var targets []Target
	for i, name := range []string{"a", "b", "c", "d"} {
		tg := web(name, int64(i), 0)
		tg.AWSVPC = true
		targets = append(targets, tg)
	}
	bridge := web("e", 5, 32769)
	keyed, warnings, _ := assignKeys(defaultKey, append(targets, bridge), state{})
	want := []string{`4 awsvpc task targets skipped (ecs-web-3-web-a, ecs-web-3-web-b, ecs-web-3-web-c and 1 more): --key "{port}" uses {port}, but awsvpc tasks publish no host port; use --key '{family}-{slot}'`}
	if len(keyed) != 1 || keyed[0].key != "32769" || !reflect.DeepEqual(warnings, want) {
		t.Errorf("keyed %v, warnings %q\nwant the bridge target only and %q", keyed, warnings, want)
	}
}

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

func TestSplitAWSVPC(t *testing.T) {
	others, awsvpc := splitAWSVPC(loadContainers(t, "ecs/containers-awsvpc.json"))
	var names []string
	for _, c := range others {
		names = append(names, containerName(c))
	}
	names = append(names, "|")
	for _, c := range awsvpc {
		names = append(names, containerName(c))
	}
	want := []string{"ecs-web-3-web-e8c6b0a1f2d3c4b5a601", "|",
		"ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001", "ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001", "ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701"}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("others | awsvpc:\n got %q\nwant %q", names, want)
	}
}

// ecsAgentStandIn starts a stand-in for the ECS agent's introspection API
// (http://127.0.0.1:51678 on a container instance) serving
// testdata/ecs/agent-v1-tasks.json byte for byte.
func ecsAgentStandIn(t *testing.T) *standin.Server {
	t.Helper()
	s, err := standin.NewECSAgent("127.0.0.1:0", readTestdata(t, "ecs/agent-v1-tasks.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestECSAgentTargets(t *testing.T) {
	_, awsvpc := splitAWSVPC(loadContainers(t, "ecs/containers-awsvpc.json"))
	orders2 := ecsPlace{"b1015afe968d", "ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001", "orders", "7", "orders", "1d6c2a9f3e8b4da4c7f2b1a0e9d8c7b6", "10.0.3.84:8080", 0, true}
	sidecar := ecsPlace{"2043217b5a86", "ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001", "orders", "7", "sidecar", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "10.0.3.61:9090", 0, true}
	orders1 := ecsPlace{"cc28fff97e8e", "ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701", "orders", "7", "orders", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", "10.0.3.61:8080", 0, true}
	gone := awsvpc[0]
	gone.ID = "0123456789ab" + gone.ID[12:]

	tests := []struct {
		name       string
		agent      ECSAgent
		containers []container.Summary
		want       []ecsPlace
		warnings   []string
	}{
		{"every TCP port the agent lists, at the task's address", ECSAgent{}, awsvpc, []ecsPlace{orders2, sidecar, orders1}, nil},
		{"--container-port narrows", ECSAgent{ContainerPort: 8080}, awsvpc, []ecsPlace{orders2, orders1}, nil},
		{"a container the agent does not list", ECSAgent{}, []container.Summary{gone, awsvpc[1]}, []ecsPlace{sidecar},
			[]string{"container ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001 0123456789ab skipped: the ECS agent at %s does not list it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := ecsAgentStandIn(t)
			tt.agent.URL = srv.URL
			got, warnings, err := tt.agent.Targets(context.Background(), newHTTPClient(time.Second), time.Second, tt.containers)
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
func awsvpcFleet(t *testing.T) []container.Summary {
	_, awsvpc := splitAWSVPC(loadContainers(t, "ecs/containers-awsvpc.json"))
	_, cs := fleetContainers(t, fleet(t, 2, func(int) http.Handler { return realHandler }))
	return append(cs, awsvpc...)
}

// dockerWith serves containers, as the Docker client decoded them from
// recorded answers, from the Docker Engine API stand-in.
func dockerWith(t *testing.T, containers []container.Summary) (host string, requests func() []string) {
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
// bridge tasks are still reported, within --timeout: they are scraped while
// the agent is asked.
func TestRunECSAgentFaults(t *testing.T) {
	const timeout = time.Second
	skipped := "warning: 3 awsvpc task containers skipped (ecs-orders-7-orders-e6a4c2b0d8f6e4c2a001, ecs-orders-7-sidecar-d4a6c8e0f2b4d6f8a001, ecs-orders-7-orders-c2e8b4d6f0a1b3c5d701): " +
		"cannot list the ECS agent's tasks at %s/v1/tasks: "
	tests := []struct {
		name  string
		fault func(s *standin.Server)
		cause string
	}{
		{"down", func(s *standin.Server) { s.Close() },
			"connection refused: is the ECS agent running with its introspection API? from inside a container, set --ecs-agent-url to an address of the host"},
		{"hung", func(s *standin.Server) { s.SetFault(standin.Hang) }, "no answer within 1s: the ECS agent is hung or overloaded"},
		{"500", func(s *standin.Server) { s.SetFault(standin.Status500) },
			"unexpected status 500 Internal Server Error: is --ecs-agent-url the ECS agent's introspection API?"},
		{"garbage", func(s *standin.Server) { s.SetFault(standin.Garbage) },
			"invalid answer: invalid character '\\x00' looking for beginning of value: is --ecs-agent-url the ECS agent's introspection API?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, _ := dockerWith(t, awsvpcFleet(t))
			agent := ecsAgentStandIn(t)
			tt.fault(agent)
			run := runPlugin(t, "--docker-host", host, "--ecs-agent-url", agent.URL, "--key", "{family}-{slot}",
				"--timeout", timeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state"))
			want := fmt.Sprintf(skipped, agent.URL) + tt.cause
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
