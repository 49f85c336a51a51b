package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

func recorded(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dockerClient(t *testing.T, host string, opt client.Opt) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.WithHost(host), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The real Docker client reads the stand-in's answers as it reads the
// recorded daemon's, on a unix socket and on tcp loopback.
func TestDockerServesRecordedAnswer(t *testing.T) {
	capture := recorded(t, "containers.json")
	var want []container.Summary
	if err := json.Unmarshal(capture, &want); err != nil {
		t.Fatal(err)
	}
	for _, network := range []string{"unix", "tcp"} {
		t.Run(network, func(t *testing.T) {
			d := &Docker{Containers: capture}
			c := dockerClient(t, d.Start(t, network), client.WithVersion("1.41"))
			ping, err := c.Ping(context.Background())
			if err != nil || ping.APIVersion != "1.41" || ping.OSType != "linux" {
				t.Errorf("ping: %+v, %v", ping, err)
			}
			got, err := c.ContainerList(context.Background(), container.ListOptions{})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("ContainerList: %v\n got %+v\nwant %+v", err, got, want)
			}
			if log := strings.Join(d.Requests(), ","); log != "HEAD /_ping,GET /v1.41/containers/json" {
				t.Errorf("requests %s", log)
			}
		})
	}
}

func TestDockerListensOnLoopbackOnly(t *testing.T) {
	if _, err := new(Docker).Listen("tcp", "0.0.0.0:0"); err == nil {
		t.Error("listening on 0.0.0.0: no error")
	}
}

func TestDockerFault(t *testing.T) {
	d := &Docker{FaultStatus: 500, FaultBody: recorded(t, "docker_500.json")}
	c := dockerClient(t, d.Start(t, "unix"), client.WithVersion("1.41"))
	_, err := c.ContainerList(context.Background(), container.ListOptions{})
	want := "Error response from daemon: invalid character 'b' looking for beginning of object key string"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

// Stats answers come in turn (the last one repeated), inspect answers as
// given, and each fault as Docker's client reads dockerd's, with the call
// logged for counting.
func TestDockerStatsInspectFaults(t *testing.T) {
	first, second := []byte(`{"read":"2026-01-01T00:00:00Z","cpu_stats":{"cpu_usage":{"total_usage":1}}}`),
		[]byte(`{"read":"2026-01-01T00:01:00Z","cpu_stats":{"cpu_usage":{"total_usage":2}}}`)
	d := &Docker{
		Stats:   map[string][][]byte{"a": {first, second}, "b": {first}, "c": {first}},
		Inspect: map[string][]byte{"a": []byte(`{"Id":"a","HostConfig":{"NanoCpus":500000000},"State":{"Pid":42}}`)},
		Faults:  map[string]string{"stats b": FaultServer, "inspect b": FaultServer, "stats c": FaultGarbage, "inspect c": FaultGone},
	}
	c := dockerClient(t, d.Start(t, "tcp"), client.WithVersion("1.41"))
	ctx := context.Background()
	read := func(id string) string {
		r, err := c.ContainerStatsOneShot(ctx, id)
		if err != nil {
			return err.Error()
		}
		defer r.Body.Close()
		var s container.StatsResponse
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil {
			return err.Error()
		}
		return fmt.Sprint(s.CPUStats.CPUUsage.TotalUsage)
	}
	for _, tt := range []struct{ id, want string }{
		{"a", "1"}, {"a", "2"}, {"a", "2"},
		{"b", "Error response from daemon: cgroup read failed"},
		{"c", "unexpected EOF"},
		{"d", "Error response from daemon: No such container: d"},
	} {
		if got := read(tt.id); got != tt.want {
			t.Errorf("stats of %s: %s, want %s", tt.id, got, tt.want)
		}
	}
	if got, err := c.ContainerInspect(ctx, "a"); err != nil || got.HostConfig.NanoCPUs != 5e8 || got.State.Pid != 42 {
		t.Errorf("inspect a: %+v, %v", got, err)
	}
	if _, err := c.ContainerInspect(ctx, "b"); err == nil || err.Error() != "Error response from daemon: inspect failed" {
		t.Errorf("inspect b: %v", err)
	}
	if _, err := c.ContainerInspect(ctx, "c"); err == nil || err.Error() != "Error response from daemon: No such container: c" {
		t.Errorf("inspect c: %v", err)
	}
	if n := d.Calls("GET /containers/a/stats"); n != 3 {
		t.Errorf("%d stats calls of a, want 3", n)
	}
	if uris := d.RequestURIs(); !strings.Contains(uris[0], "/stats?") || !strings.Contains(uris[0], "stream=0") {
		t.Errorf("first request %q, want the stats call with its query", uris[0])
	}

	none := &Docker{NoStats: true, Stats: map[string][][]byte{"a": {first}}}
	nc := dockerClient(t, none.Start(t, "tcp"), client.WithVersion("1.41"))
	if _, err := nc.ContainerStatsOneShot(ctx, "a"); err == nil || err.Error() != "Error response from daemon: page not found" {
		t.Errorf("stats without the endpoint: %v", err)
	}
}

// A daemon that serves API 1.44 … 1.51 refuses 1.41 with moby's message;
// a negotiating client is served at the version it announces.
func TestDockerRefusesVersion(t *testing.T) {
	d := &Docker{Containers: []byte("[]\n"), APIVersion: "1.51", MinAPIVersion: "1.44"}
	host := d.Start(t, "unix")
	_, err := dockerClient(t, host, client.WithVersion("1.41")).ContainerList(context.Background(), container.ListOptions{})
	want := "Error response from daemon: client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	_, err = dockerClient(t, host, client.WithVersion("1.52")).ContainerList(context.Background(), container.ListOptions{})
	if want := "Error response from daemon: client version 1.52 is too new. Maximum supported API version is 1.51"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
	if _, err := dockerClient(t, host, client.WithAPIVersionNegotiation()).ContainerList(context.Background(), container.ListOptions{}); err != nil {
		t.Error(err)
	}
	want = "GET /v1.41/containers/json,GET /v1.52/containers/json,HEAD /_ping,GET /v1.51/containers/json"
	if log := strings.Join(d.Requests(), ","); log != want {
		t.Errorf("requests %s\nwant %s", log, want)
	}
}

// Every fleet container is the recorded template but for Id, Names, the
// task-arn label and the bindings' PublicPort.
func TestFleetContainers(t *testing.T) {
	capture := recorded(t, "containers.json")
	// template is a fresh copy of the recorded ecs-web-3-web-… container.
	template := func() map[string]any {
		var all []map[string]any
		if err := json.Unmarshal(capture, &all); err != nil {
			t.Fatal(err)
		}
		for _, c := range all {
			if c["Names"].([]any)[0] == "/ecs-web-3-web-e8c6b0a1f2d3c4b5a601" {
				return c
			}
		}
		t.Fatal("no ecs-web-3-web-… in the capture")
		return nil
	}
	ports := []uint16{40001, 40002, 65535}
	body, err := FleetContainers(capture, ports)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(body), "}]\n") || strings.Count(string(body), "\n") != 1 {
		t.Errorf("not compact JSON and a newline: %.80q…", body)
	}
	var fleet []map[string]any
	if err := json.Unmarshal(body, &fleet); err != nil {
		t.Fatal(err)
	}
	if len(fleet) != len(ports) {
		t.Fatalf("%d containers, want %d", len(fleet), len(ports))
	}
	for i, c := range fleet {
		want := template()
		want["Id"] = fmt.Sprintf("%012x", i+1) + want["Id"].(string)[12:]
		want["Names"] = []any{fmt.Sprintf("/ecs-web-3-web-%04d", i)}
		want["Labels"].(map[string]any)["com.amazonaws.ecs.task-arn"] = fmt.Sprintf("arn:aws:ecs:ap-northeast-1:123456789012:task/capture/%032x", i+1)
		for _, p := range want["Ports"].([]any) {
			p.(map[string]any)["PublicPort"] = float64(ports[i])
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("container %d:\n got %v\nwant %v", i, c, want)
		}
	}
	// field order as recorded
	if i, j := strings.Index(string(body), `"Id"`), strings.Index(string(body), `"Mounts"`); i != 2 || j < i {
		t.Errorf("fields out of the recorded order: %.200s", body)
	}
}
