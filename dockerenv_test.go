package main

// The integration harness: TestMain builds the plugin; the first test that
// needs Docker imports the test app as an image into the daemon at
// $DOCKER_HOST and starts ECS-like tasks on dynamic host ports, all through
// scripts/ecs-task.sh. Everything it creates carries a per-run cluster label
// (or one derived from it, see ownCluster) and image tag, and is removed at
// the end. The shared tasks (healthy, broken) are only read by the tests.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	// testdata/statsapp serves this handler; go mod tidy skips testdata, so
	// this import keeps the module in go.mod.
	_ "github.com/fukata/golang-stats-api-handler"
)

// task is one container started by the harness.
type task struct {
	name   string
	id     string // full container id
	family string // com.amazonaws.ecs.task-definition-family
	mode   string // STATSAPP_MODE: ok, badjson, hang, error, redirect
	port   string // published host port of 8080/tcp
}

func (t task) shortID() string { return t.id[:12] }

var (
	pluginBin   string // the built plugin
	dockerHost  string // where the tasks run
	dockerOnce  sync.Once
	dockerSkip  string // why Docker tests skip; empty when a daemon answers
	dockerErr   error  // setup failure
	runID       string // unique per test binary run
	cluster     string // com.amazonaws.ecs.cluster of the shared tasks; ownCluster derives others
	image       string // the imported test app image
	familyWeb   string // two healthy tasks
	familyAPI   string // one healthy task
	familyBad   string // the broken tasks
	familyOwn   string // tasks of a test's own cluster (ownCluster)
	healthy     []task
	broken      []task
	workDir     string
	brokenModes = []string{"badjson", "hang", "error", "redirect"}
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	var err error
	workDir, err = os.MkdirTemp("", "ecs-gostats-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)

	pluginBin = filepath.Join(workDir, "mackerel-plugin-ecs-gostats")
	if out, err := goBuild(pluginBin, "."); err != nil {
		fmt.Fprintf(os.Stderr, "building the plugin: %v\n%s", err, out)
		return 1
	}
	dockerHost = os.Getenv("DOCKER_HOST")
	if dockerHost == "" {
		dockerHost = "unix:///var/run/docker.sock"
	}

	code := m.Run()
	if cluster != "" {
		cleanup()
	}
	return code
}

// needDocker starts this run's tasks the first time a test needs them. With
// no daemon answering it skips the test, or fails it when CI is set.
func needDocker(t *testing.T) {
	t.Helper()
	dockerOnce.Do(func() { dockerErr = startTasks() })
	if dockerSkip != "" {
		if os.Getenv("CI") != "" {
			t.Fatal("CI is set but " + dockerSkip)
		}
		t.Skip(dockerSkip)
	}
	if dockerErr != nil {
		t.Fatal("integration setup: ", dockerErr)
	}
}

func startTasks() error {
	if out, err := docker(context.Background(), "info", "--format", "{{.ServerVersion}}"); err != nil {
		dockerSkip = fmt.Sprintf("no Docker daemon answers at %s (%v: %s); run `make test`, which starts one",
			dockerHost, err, strings.TrimSpace(out))
		return nil
	}
	b := make([]byte, 4)
	rand.Read(b)
	runID = hex.EncodeToString(b)
	cluster = "itest-" + runID
	image = "ecs-gostats-statsapp:itest-" + runID
	familyWeb = "itest" + runID + "-web"
	familyAPI = "itest" + runID + "-api"
	familyBad = "itest" + runID + "-bad"
	familyOwn = "itest" + runID + "-own"
	return setup()
}

func goBuild(out, pkg string) (string, error) {
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-X main.version=itest", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// docker runs the docker CLI against dockerHost and returns its stdout, or
// its stderr with the error.
func docker(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+dockerHost)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stderr.String(), fmt.Errorf("docker %s: %w", strings.Join(args, " "), err)
	}
	return stdout.String(), nil
}

func setup() error {
	if _, err := ecsTask("image", image); err != nil {
		return err
	}
	for _, fam := range []string{familyWeb, familyWeb, familyAPI} {
		tk, err := startTask(cluster, fam, "ok", "8080")
		if err != nil {
			return err
		}
		healthy = append(healthy, tk)
	}
	for _, mode := range brokenModes {
		tk, err := startTask(cluster, familyBad, mode, "8080")
		if err != nil {
			return err
		}
		broken = append(broken, tk)
	}
	for _, tk := range append(append([]task{}, healthy...), broken...) {
		if err := waitAnswers(tk); err != nil {
			return err
		}
	}
	return nil
}

// ecsTask runs scripts/ecs-task.sh against dockerHost and returns its
// stdout, or an error with its stderr.
func ecsTask(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "scripts/ecs-task.sh", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+dockerHost)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("scripts/ecs-task.sh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// startTask runs the test app as the ECS agent runs a task container in
// bridge mode (scripts/ecs-task.sh run); publish is docker's -p argument for
// container port 8080.
func startTask(cluster, family, mode, publish string) (task, error) {
	out, err := ecsTask("run", "--image", image, "--cluster", cluster, "--family", family,
		"--mode", mode, "--publish", publish)
	if err != nil {
		return task{}, err
	}
	// <container id> <name> <host port of 8080/tcp on its IPv4 binding>
	f := strings.Fields(out)
	if len(f) != 3 || len(f[0]) != 64 || f[2] == "-" {
		return task{}, fmt.Errorf("scripts/ecs-task.sh run printed %q, want <id> <name> <port>", out)
	}
	return task{id: f[0], name: f[1], port: f[2], family: family, mode: mode}, nil
}

// healthyOf is the shared healthy tasks of a family.
func healthyOf(family string) []task {
	var tasks []task
	for _, tk := range healthy {
		if tk.family == family {
			tasks = append(tasks, tk)
		}
	}
	return tasks
}

// ownCluster is a cluster of the test's own, for tasks a test changes: its
// tasks are in none of the shared tasks' filters, and are removed when the
// test ends.
func ownCluster(t *testing.T, name string) string {
	c := cluster + "-" + name
	t.Cleanup(func() {
		if _, err := ecsTask("rm", "--cluster", c); err != nil {
			t.Error(err)
		}
	})
	return c
}

// waitAnswers waits until the task's app answers through its published port:
// /stats for healthy tasks, / (which every mode serves) for broken ones.
func waitAnswers(tk task) error {
	path := "/"
	if tk.mode == "ok" {
		path = "/stats"
	}
	url := "http://127.0.0.1:" + tk.port + path
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %s", resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("task %s does not answer at %s: %v", tk.name, url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// cleanup removes this run's shared tasks and its image.
func cleanup() {
	if _, err := ecsTask("rm", "--cluster", cluster, "--image", image); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err)
	}
}
