package main

// Integration tests of awsvpc tasks on an EC2 container instance: the built
// binary on the host, real containers laid out as the ECS agent lays out
// awsvpc tasks, and a stand-in for the ECS agent's introspection API. The
// lab below (shared with fargate_test.go) is self-contained: an image of its
// own, a Docker network of its own, containers labelled with a cluster of
// its own, all removed when the test ends.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// ecsLab is what one test starts on the Docker daemon at $DOCKER_HOST.
type ecsLab struct {
	t       *testing.T
	cluster string // com.amazonaws.ecs.cluster of every container started here
	image   string // /statsapp, /pause, /mackerel-plugin-ecs-gostats and, when built, /mackerel-agent
	network string // a bridge network of the lab's own
	gateway string // the host's address on it
}

var (
	labDockerOnce sync.Once
	labDockerErr  error
)

// labDockerHost is the daemon the docker CLI and the plugin use.
func labDockerHost() string {
	if h := os.Getenv("DOCKER_HOST"); h != "" {
		return h
	}
	return "unix:///var/run/docker.sock"
}

// newECSLab skips the test when no Docker daemon answers (fails it under CI),
// and sets up the image and the network.
func newECSLab(t *testing.T) *ecsLab {
	t.Helper()
	labDockerOnce.Do(func() {
		out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
		if err != nil {
			labDockerErr = fmt.Errorf("no Docker daemon answers at %s (%v: %s)", labDockerHost(), err, bytes.TrimSpace(out))
		}
	})
	if labDockerErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but ", labDockerErr)
		}
		t.Skip(labDockerErr, "; run `make test`, which starts one")
	}
	b := make([]byte, 4)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := &ecsLab{t: t, cluster: "itest-" + id, image: "ecs-gostats-lab:" + id, network: "ecs-gostats-lab-" + id}
	t.Cleanup(l.cleanup)

	l.image = l.buildImage(id)
	l.docker("network", "create", "--label", "com.amazonaws.ecs.cluster="+l.cluster, l.network)
	l.gateway = strings.TrimSpace(l.docker("network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", l.network))
	return l
}

// buildImage imports one image holding the test app, the pause program and
// the built plugin (and mackerel-agent when MACKEREL_AGENT_BIN is set), all
// static, and an empty /tmp: each container picks its program with
// --entrypoint.
func (l *ecsLab) buildImage(id string) string {
	dir := l.t.TempDir()
	files := map[string]string{"mackerel-plugin-ecs-gostats": pluginBin}
	for _, prog := range []string{"statsapp", "pause"} {
		out := filepath.Join(dir, prog)
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/"+prog)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			l.t.Fatalf("building testdata/%s: %v\n%s", prog, err, b)
		}
		files[prog] = out
	}
	if agent := os.Getenv("MACKEREL_AGENT_BIN"); agent != "" {
		files["mackerel-agent"] = agent
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b, err := os.ReadFile(files[name])
		if err != nil {
			l.t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(b))})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		l.t.Fatal(err)
	}
	tarball := filepath.Join(dir, "lab.tar")
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		l.t.Fatal(err)
	}
	image := "ecs-gostats-lab:" + id
	l.docker("import", tarball, image)
	return image
}

// docker runs the docker CLI and returns its stdout; a failure fails the test.
func (l *ecsLab) docker(args ...string) string {
	l.t.Helper()
	out, err := l.dockerErr(args...)
	if err != nil {
		l.t.Fatalf("%v: %s", err, out)
	}
	return out
}

func (l *ecsLab) dockerErr(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

// ecsLabels are the labels the ECS agent puts on a container of a task, but
// the cluster's, which every container of the lab has (see start).
func (l *ecsLab) ecsLabels(family, container, taskID string) []string {
	return []string{
		"--label", "com.amazonaws.ecs.task-definition-family=" + family,
		"--label", "com.amazonaws.ecs.task-definition-version=7",
		"--label", "com.amazonaws.ecs.container-name=" + container,
		"--label", "com.amazonaws.ecs.task-arn=arn:aws:ecs:ap-northeast-1:123456789012:task/" + l.cluster + "/" + taskID,
	}
}

// start runs a container of the lab image in the background with program as
// its entrypoint and returns its id.
func (l *ecsLab) start(name, program string, args ...string) string {
	l.t.Helper()
	run := append([]string{"run", "-d", "--name", l.cluster + "-" + name,
		"--label", "com.amazonaws.ecs.cluster=" + l.cluster, "--entrypoint", "/" + program}, args...)
	return strings.TrimSpace(l.docker(append(run, l.image)...))
}

// address is a container's IPv4 address on the lab network.
func (l *ecsLab) address(id string) string {
	l.t.Helper()
	return strings.TrimSpace(l.docker("inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", l.network), id))
}

// waitStats waits until url serves stats.
func (l *ecsLab) waitStats(url string) {
	l.t.Helper()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s does not answer: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup removes the lab's containers, network and image, nothing else.
func (l *ecsLab) cleanup() {
	out, err := l.dockerErr("ps", "-aq", "--filter", "label=com.amazonaws.ecs.cluster="+l.cluster)
	if ids := strings.Fields(out); err == nil && len(ids) > 0 {
		if out, err := l.dockerErr(append([]string{"rm", "-f"}, ids...)...); err != nil {
			l.t.Errorf("cleanup: %v: %s", err, out)
		}
	}
	for _, args := range [][]string{{"network", "rm", l.network}, {"rmi", l.image}} {
		if out, err := l.dockerErr(args...); err != nil && !strings.Contains(out, "No such") && !strings.Contains(out, "not found") {
			l.t.Errorf("cleanup: %v: %s", err, out)
		}
	}
}

// awsvpcTask starts an awsvpc task as the ECS agent does on an EC2 container
// instance: a pause container holding the task's network namespace (here on
// the lab network, where the ECS agent has CNI attach the task's ENI), and
// the task's containers joined to it with --network container:<pause>, all
// with the task's ECS labels. apps maps container name to STATSAPP_ADDR. It
// returns the pause container's address, the task's "ENI address", and the
// app containers' ids by name.
func (l *ecsLab) awsvpcTask(family, taskID string, apps map[string]string) (address string, ids map[string]string) {
	l.t.Helper()
	pause := l.start(taskID+"-pause", "pause", append([]string{"--network", l.network},
		l.ecsLabels(family, "~internal~ecs~pause", taskID)...)...)
	ids = map[string]string{}
	for name, addr := range apps {
		ids[name] = l.start(taskID+"-"+name, "statsapp", append([]string{"--network", "container:" + pause, "-e", "STATSAPP_ADDR=" + addr},
			l.ecsLabels(family, name, taskID)...)...)
	}
	return l.address(pause), ids
}

// TestAWSVPCTasks: on a container instance running awsvpc and bridge tasks,
// one run of the built binary with --key '{family}-{slot}' reports every
// task; with the ECS agent down, hung or answering garbage, the bridge tasks
// are still reported and the run ends within --timeout.
func TestAWSVPCTasks(t *testing.T) {
	l := newECSLab(t)

	// Two awsvpc tasks of family orders, the first with a sidecar serving stats on 9090.
	addr1, task1 := l.awsvpcTask("orders", "0c5b1f8e2d7a4c93b6e1a0f9d8c7b6a5", map[string]string{"orders": ":8080", "sidecar": ":9090"})
	addr2, task2 := l.awsvpcTask("orders", "1d6c2a9f3e8b4da4c7f2b1a0e9d8c7b6", map[string]string{"orders": ":8080"})
	// Two bridge tasks of family web on dynamic host ports.
	var bridge []string
	for i, taskID := range []string{"7e2d9c4b1a8f4e63b5d0c9a8f7e6d5c4", "8f3e0d5c2b9a4f74c6e1d0b9a8f7e6d5"} {
		id := l.start(fmt.Sprintf("web-%d", i), "statsapp", append([]string{"-p", "8080"}, l.ecsLabels("web", "web", taskID)...)...)
		port := strings.TrimSpace(strings.SplitN(l.docker("port", id, "8080/tcp"), "\n", 2)[0])
		bridge = append(bridge, "127.0.0.1:"+port[strings.LastIndex(port, ":")+1:])
	}
	awsvpc := map[string]string{ // container id -> the address the plugin must scrape
		task1["orders"]: addr1 + ":8080", task1["sidecar"]: addr1 + ":9090", task2["orders"]: addr2 + ":8080",
	}
	for _, a := range append(slices.Collect(maps.Values(awsvpc)), bridge...) {
		l.waitStats("http://" + a + "/stats")
	}

	// The stand-in's answer is testdata/ecs/agent-v1-tasks.template.json with
	// the containers' ids and their tasks' addresses filled in, nothing else:
	// the plugin looks containers up by DockerId and takes the task's address;
	// the container names in it stay as recorded. It lists the awsvpc tasks
	// (and a stopped one), not the bridge tasks, which the plugin does not
	// look up.
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
	agent, err := standin.NewECSAgent("127.0.0.1:0", answer)
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()

	const timeout = 2 * time.Second
	args := func(extra ...string) []string {
		return append([]string{"--docker-host", labDockerHost(), "--label", "com.amazonaws.ecs.cluster=" + l.cluster,
			"--ecs-agent-url", agent.URL, "--key", "{family}-{slot}", "--timeout", timeout.String(),
			"--tempfile", filepath.Join(t.TempDir(), "state")}, extra...)
	}

	t.Run("every task in one run", func(t *testing.T) {
		r := runPlugin(t, nil, args()...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		keys := []string{"orders-1", "orders-2", "orders-3", "web-1", "web-2"}
		assertKeys(t, parseMetrics(t, r.stdout), keysFor(keys, gaugeMetrics))
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
			if f := strings.Fields(line); len(f) >= 6 && f[5] == "ok" && strings.HasPrefix(f[0], l.cluster+"-") {
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

	for _, tt := range []struct {
		name  string
		fault func()
		cause string
	}{
		{"agent answers garbage", func() { agent.SetFault(standin.Garbage) }, "invalid answer: "},
		{"agent hung", func() { agent.SetFault(standin.Hang) }, "no answer within 2s: the ECS agent is hung or overloaded"},
		{"agent down", func() { agent.Close() }, "connection refused: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.fault()
			r := runPlugin(t, nil, args()...)
			if r.code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
			}
			assertKeys(t, parseMetrics(t, r.stdout), keysFor([]string{"web-1", "web-2"}, gaugeMetrics))
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
