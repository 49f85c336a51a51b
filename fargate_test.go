package main

// Integration test of --source task-metadata as on Fargate, where the plugin
// runs beside the task's containers (as a plugin of mackerel-container-agent,
// a container of the task): real containers sharing one network namespace,
// the built binary in a container of that namespace, and a stand-in for the
// task metadata endpoint. The lab is awsvpc_test.go's.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// inTask runs the lab image's program in a container in the network namespace
// of the container netns, with env, and waits for it, as `docker run --rm`.
func (l *ecsLab) inTask(netns string, env []string, program string, args ...string) result {
	l.t.Helper()
	run := []string{"run", "--rm", "--label", "com.amazonaws.ecs.cluster=" + l.cluster,
		"--network", "container:" + netns, "--entrypoint", "/" + program}
	for _, e := range env {
		run = append(run, "-e", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append(append(run, l.image), args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit) && exit.ExitCode() < 125: // 125 and up: docker's own failures
		r.code = exit.ExitCode()
	case err != nil:
		l.t.Fatalf("docker %s: %v\n%s", strings.Join(run, " "), err, stderr.String())
	}
	return r
}

// fargateCommand is the plugin command of the mackerel-container-agent
// example, run from where the lab image has the plugin.
var fargateCommand = []string{"/mackerel-plugin-ecs-gostats", "--source", "task-metadata"}

// TestFargateTask: one task of two app containers serving stats on 8080 and
// 9090 in one network namespace, as on Fargate. The built binary, run in that
// namespace with ECS_CONTAINER_METADATA_URI_V4 set, reports both containers
// under their names; under mackerel-agent once, the same command's values
// and graph definitions come out as custom.gostats.<container>.*.
func TestFargateTask(t *testing.T) {
	l := newECSLab(t)

	// The task: a pause-like container holding the network namespace (on the
	// lab network, as Fargate attaches the task's ENI to it), and the app
	// containers web and api in it, as the recorded task metadata lists them.
	pause := l.start("task-pause", "pause", "--network", l.network)
	for name, addr := range map[string]string{"web": ":8080", "api": ":9090"} {
		l.start("task-"+name, "statsapp", "--network", "container:"+pause, "-e", "STATSAPP_ADDR="+addr)
	}
	ip := l.address(pause)
	l.waitStats("http://" + ip + ":8080/stats")
	l.waitStats("http://" + ip + ":9090/stats")

	// The stand-in for the task metadata endpoint serves the recorded Fargate
	// answer testdata/ecs/task-metadata-v4-fargate.json byte for byte. It
	// listens on the lab network's gateway, the host's address on that
	// network, which the task's containers reach as they reach 169.254.170.2
	// on Fargate; no process of the test runs in the task but the plugin.
	answer, err := os.ReadFile("testdata/ecs/task-metadata-v4-fargate.json")
	if err != nil {
		t.Fatal(err)
	}
	md, err := standin.NewTaskMetadata(l.gateway+":0", answer)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	env := []string{"ECS_CONTAINER_METADATA_URI_V4=" + md.URL}

	t.Run("the plugin in the task", func(t *testing.T) {
		r := l.inTask(pause, env, fargateCommand[0][1:], fargateCommand[1:]...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		m := parseMetrics(t, r.stdout)
		assertKeys(t, m, keysFor([]string{"api", "web"}, gaugeMetrics))
		for _, c := range []string{"web", "api"} {
			if k := "gostats." + c + ".memory.memory_sys"; m[k] <= 0 {
				t.Errorf("%s = %f, want > 0", k, m[k])
			}
		}
		if got := md.Requests(); len(got) != 1 || got[0] != "GET "+strings.TrimPrefix(md.URL, "http://"+md.Addr())+"/task" {
			t.Errorf("task metadata requests %q, want one GET <base>/task", got)
		}
	})

	t.Run("under mackerel-agent once", func(t *testing.T) {
		if os.Getenv("MACKEREL_AGENT_BIN") == "" {
			if os.Getenv("CI") != "" {
				t.Fatal("CI is set but MACKEREL_AGENT_BIN is not; run `make test`")
			}
			t.Skip("MACKEREL_AGENT_BIN is not set; run `make test`, which builds mackerel-agent")
		}
		command, _ := json.Marshal(fargateCommand)
		conf := fmt.Sprintf(`apikey = "dummy"
apibase = "http://127.0.0.1:9"
pidfile = "/tmp/mackerel-agent.pid"
root = "/tmp"
cloud_platform = "none"

[plugin.metrics.ecs-gostats]
command = %s
`, command)
		confFile := filepath.Join(t.TempDir(), "mackerel-agent.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		create := []string{"create", "--label", "com.amazonaws.ecs.cluster=" + l.cluster, "--network", "container:" + pause,
			"-e", env[0], "--entrypoint", "/mackerel-agent", l.image, "once", "-conf", "/tmp/mackerel-agent.conf"}
		id := strings.TrimSpace(l.docker(create...))
		l.docker("cp", confFile, id+":/tmp/mackerel-agent.conf")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "docker", "start", "-a", id)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("mackerel-agent once: %v\nstderr:\n%s", err, stderr.String())
		}
		if strings.Contains(stderr.String(), "Failed to fetch meta information") {
			t.Errorf("mackerel-agent could not read the plugin's graph definitions:\n%s", stderr.String())
		}

		var out struct {
			Metrics struct {
				Values []struct {
					Values map[string]struct{ Value float64 }
				}
			} `json:"metrics"`
		}
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("mackerel-agent output: %v\n%s", err, stdout.String())
		}
		custom := map[string]float64{}
		for _, vs := range out.Metrics.Values {
			for k, v := range vs.Values {
				if strings.HasPrefix(k, "custom.") {
					custom[k] = v.Value
				}
			}
		}
		var want []string
		for _, k := range keysFor([]string{"api", "web"}, gaugeMetrics) {
			want = append(want, "custom."+k)
		}
		assertKeys(t, custom, want)

		// The graph definitions the agent posts are the plugin's meta output
		// under custom.: each value falls in one, whose wildcard stands for
		// the container.
		meta := l.inTask(pause, append(env, "MACKEREL_AGENT_PLUGIN_META=1"), fargateCommand[0][1:], fargateCommand[1:]...)
		_, body, _ := strings.Cut(meta.stdout, "\n")
		var defs struct {
			Graphs map[string]struct {
				Metrics []struct{ Name string }
			}
		}
		if err := json.Unmarshal([]byte(body), &defs); err != nil {
			t.Fatalf("meta: %v\n%s", err, meta.stdout)
		}
		for k := range custom {
			f := strings.Split(k, ".") // custom gostats <container> <graph> <metric>
			g := defs.Graphs[f[1]+".#."+f[3]]
			if !slices.ContainsFunc(g.Metrics, func(m struct{ Name string }) bool { return m.Name == f[4] }) {
				t.Errorf("%s: no graph definition custom.%s.#.%s with metric %s", k, f[1], f[3], f[4])
			}
		}
		if t.Failed() {
			t.Logf("mackerel-agent stderr:\n%s", stderr.String())
		}
	})
}
