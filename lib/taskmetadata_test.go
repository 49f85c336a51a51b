package mpecsgostats

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// taskMetadataStandIn starts a stand-in for the task metadata endpoint v4
// (what ECS_CONTAINER_METADATA_URI_V4 points at in an ECS task) serving the
// recorded answer testdata/ecs/<name>, byte for byte.
func taskMetadataStandIn(t *testing.T, name string) *standin.Server {
	t.Helper()
	return taskMetadataServing(t, readTestdata(t, filepath.Join("ecs", name)))
}

// taskMetadataServing starts a stand-in for the task metadata endpoint
// serving answer.
func taskMetadataServing(t *testing.T, answer []byte) *standin.Server {
	t.Helper()
	s, err := standin.NewTaskMetadata("127.0.0.1:0", answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// withPorts is a recorded task metadata answer with each of its container
// ports old (listed as "ContainerPort" and "HostPort", as awsvpc lists
// them) made new: ports of the test's own.
func withPorts(t *testing.T, answer []byte, ports map[int]int) []byte {
	t.Helper()
	for old, new := range ports {
		for _, field := range []string{"ContainerPort", "HostPort"} {
			from, to := fmt.Sprintf(`"%s": %d,`, field, old), fmt.Sprintf(`"%s": %d,`, field, new)
			if field == "HostPort" {
				from, to = fmt.Sprintf(`"%s": %d`+"\n", field, old), fmt.Sprintf(`"%s": %d`+"\n", field, new)
			}
			if n := bytes.Count(answer, []byte(from)); n != 1 {
				t.Fatalf("the recorded answer lists %q %d times, want once", from, n)
			}
			answer = bytes.Replace(answer, []byte(from), []byte(to), 1)
		}
	}
	return answer
}

// ecsPlace is what tells targets apart in these tests.
type ecsPlace struct {
	ID, Name, Family, Revision, Container, Task, Addr string
	HostPort                                          uint16
	AWSVPC                                            bool
}

func ecsPlaceOf(t target) ecsPlace {
	return ecsPlace{shortID(t.ContainerID), t.ContainerName, t.Family, t.Revision, t.ECSContainer, t.TaskID, t.Addr(), t.HostPort, t.AWSVPC}
}

func ecsPlacesOf(ts []target) []ecsPlace {
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
		s      taskMetadataSource
		want   []ecsPlace
	}{
		{"fargate: running NORMAL containers with a TCP port", "task-metadata-v4-fargate.json", taskMetadataSource{}, []ecsPlace{web, api}},
		{"EC2 awsvpc: not the pause container", "task-metadata-v4-ec2-awsvpc.json", taskMetadataSource{}, []ecsPlace{orders}},
		{"EC2 bridge: a port listed twice is one target, at the container's address", "task-metadata-v4-ec2-bridge.json", taskMetadataSource{}, []ecsPlace{bridgeWeb}},
		{"--container-port", "task-metadata-v4-fargate.json", taskMetadataSource{ContainerPort: 9090}, []ecsPlace{api}},
		{"--container-port of a UDP port", "task-metadata-v4-fargate.json", taskMetadataSource{ContainerPort: 8125}, nil},
		{"--name regular expression", "task-metadata-v4-fargate.json", taskMetadataSource{Names: []string{"^a.i$"}}, []ecsPlace{api}},
		{"--name with docker's leading slash", "task-metadata-v4-fargate.json", taskMetadataSource{Names: []string{"^/web"}}, []ecsPlace{web}},
		{"--name matches the task definition's container name too", "task-metadata-v4-ec2-awsvpc.json", taskMetadataSource{Names: []string{"^orders$"}}, []ecsPlace{orders}},
		{"--name repeated: either", "task-metadata-v4-fargate.json", taskMetadataSource{Names: []string{"^web$", "^api$"}}, []ecsPlace{web, api}},
		{"--label KEY=VALUE", "task-metadata-v4-fargate.json", taskMetadataSource{Labels: []string{"tier=back"}}, []ecsPlace{api}},
		{"--label KEY", "task-metadata-v4-fargate.json", taskMetadataSource{Labels: []string{"tier"}}, []ecsPlace{web, api}},
		{"--label repeated: both", "task-metadata-v4-fargate.json", taskMetadataSource{Labels: []string{"tier", "com.amazonaws.ecs.container-name=web"}}, []ecsPlace{web}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := taskMetadataStandIn(t, tt.answer)
			tt.s.URL, tt.s.hc = srv.URL, newHTTPClient(time.Second, 128)
			f, err := tt.s.discover(context.Background())
			if err != nil || len(f.warnings) > 0 {
				t.Fatalf("err %v, warnings %q", err, f.warnings)
			}
			got := f.targets
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
// stand-in for the endpoint, the recorded Fargate task's web and api
// containers listening on ports of the test's own (web answers, api
// refuses): the default key is the container's name in the task
// definition; --list shows the containers passed over, and why, which a
// normal run does not warn about.
func TestRunTaskMetadata(t *testing.T) {
	web := fleet(t, 1, func(int) http.Handler { return realHandler })[0]
	api := refusingPort(t)
	answer := withPorts(t, readTestdata(t, "ecs/task-metadata-v4-fargate.json"), map[int]int{8080: int(web), 9090: api})
	srv := taskMetadataServing(t, answer)
	t.Setenv(envTaskMetadata, srv.URL)
	run := runPlugin(t, "--source", "task-metadata", "--list", "--timeout", "2s", "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.stderr) != 0 || len(run.keys) != 5 {
		t.Fatalf("exit %d, stderr %q, stdout %q", run.code, run.stderr, run.keys)
	}
	for i, want := range []string{
		fmt.Sprintf("web b3f8e0c2a7d9 shop 127.0.0.1:%d web ok", web),
		fmt.Sprintf("api b3f8e0c2a7d9 shop 127.0.0.1:%d api error: dial tcp 127.0.0.1:%d: connect: connection refused", api, api),
		"statsd b3f8e0c2a7d9 - - - passed over: lists no TCP port (no portMappings; a gostats.port label names one)",
		"migrate b3f8e0c2a7d9 - - - passed over: not running (STOPPED)",
		"mackerel-container-agent b3f8e0c2a7d9 - - - passed over: lists no TCP port (no portMappings; a gostats.port label names one)",
	} {
		if got := strings.Join(strings.Fields(run.keys[i]), " "); !strings.HasPrefix(got, want) {
			t.Errorf("--list line %d: %q, want it to start %q", i, got, want)
		}
	}
	run = runPlugin(t, "--source", "task-metadata", "--timeout", "2s", "--tempfile", filepath.Join(t.TempDir(), "state"))
	refused := fmt.Sprintf("warning: scrape http://127.0.0.1:%d/stats (container api b3f8e0c2a7d9): dial tcp 127.0.0.1:%d: connect: connection refused", api, api)
	if run.code != 0 || !slices.Equal(run.stderr, []string{refused}) {
		t.Errorf("a normal run: exit %d, stderr %q\nwant exit 0 and only %q", run.code, run.stderr, refused)
	}
	if len(run.keys) != gaugesPerTask() || !strings.HasPrefix(run.keys[0], "gostats.web.") {
		t.Errorf("a normal run: keys %q, want the %d gauges of web", run.keys, gaugesPerTask())
	}
	// --task-metadata-url overrides the variable, which names a port where
	// nothing listens.
	t.Setenv(envTaskMetadata, fmt.Sprintf("http://127.0.0.1:%d/nothing", refusingPort(t)))
	run = runPlugin(t, "--source", "task-metadata", "--task-metadata-url", srv.URL, "--list", "--timeout", "2s",
		"--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != 5 {
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
		{"down", nil, // a port of the test's own where nothing listens: a closed stand-in's could be another's again
			"cannot read task metadata at %s: connection refused: the endpoint is reached only from inside an ECS task; set --task-metadata-url if it is elsewhere"},
		{"hung", func(s *standin.Server) { s.SetFault(standin.Hang) }, "cannot read task metadata at %s: no answer within 300ms"},
		{"500", func(s *standin.Server) { s.SetFault(standin.Status500) }, "cannot read task metadata at %s: unexpected status 500 Internal Server Error"},
		{"garbage", func(s *standin.Server) { s.SetFault(standin.Garbage) },
			"cannot read task metadata at %s: invalid answer: invalid character '\\x00' looking for beginning of value"},
		{"JSON of another endpoint", func(s *standin.Server) {}, "cannot read task metadata at %s: no TaskARN and no Containers: not a task metadata v4 answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			answer := "task-metadata-v4-fargate.json"
			if tt.name == "JSON of another endpoint" {
				answer = "../stats.json" // a golang-stats-api-handler answer
			}
			url := fmt.Sprintf("http://127.0.0.1:%d/v4/0123456789abcdef", refusingPort(t))
			if tt.fault != nil {
				srv := taskMetadataStandIn(t, answer)
				tt.fault(srv)
				url = srv.URL
			}
			t.Setenv(envTaskMetadata, url)
			run := runPlugin(t, "--source", "task-metadata", "--timeout", timeout.String(), "--tempfile", filepath.Join(t.TempDir(), "state"))
			want := pluginName + ": " + fmt.Sprintf(tt.want, url+"/task")
			if run.code != 1 || len(run.keys) != 0 || len(run.stderr) != 1 || run.stderr[0] != want {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 1 and %q", run.code, run.keys, run.stderr, want)
			}
			if run.wall > 5*timeout+2*time.Second {
				t.Errorf("run took %s with --timeout %s", run.wall, timeout)
			}
		})
	}

	// With an output that keeps a share of --timeout, discovery is given the
	// rest, and its message names what it was given.
	t.Run("hung, with an OTLP push after it", func(t *testing.T) {
		srv := taskMetadataStandIn(t, "task-metadata-v4-fargate.json")
		srv.SetFault(standin.Hang)
		t.Setenv(envTaskMetadata, srv.URL)
		t.Setenv(envAPIKey, "")
		run := runPlugin(t, "--source", "task-metadata", "--timeout", "400ms", "--output", "mackerel,otlp",
			"--otlp-endpoint", fmt.Sprintf("127.0.0.1:%d", refusingPort(t)), "--otlp-insecure", "--no-health",
			"--tempfile", filepath.Join(t.TempDir(), "state"))
		want := pluginName + ": cannot read task metadata at " + srv.URL + "/task: no answer within 300ms" // 3/4 of 400ms
		if run.code != 1 || len(run.stderr) != 1 || run.stderr[0] != want {
			t.Errorf("exit %d, stderr %q\nwant exit 1 and %q", run.code, run.stderr, want)
		}
	})

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
