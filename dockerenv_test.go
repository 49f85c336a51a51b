package main

// The integration harness: TestMain builds the plugin; the first test that
// needs Docker builds the test app, imports it as an image into the daemon at
// $DOCKER_HOST and starts ECS-like tasks on dynamic host ports. Everything it
// creates carries a per-run name prefix and cluster label, and TestMain removes
// it at the end.

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
	cluster     string // com.amazonaws.ecs.cluster of every task started here
	image       string // the imported test app image
	familyWeb   string // two healthy tasks
	familyAPI   string // one healthy task
	familyBad   string // the broken tasks
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
	app := filepath.Join(workDir, "img", "statsapp")
	if out, err := goBuild(app, "./testdata/statsapp"); err != nil {
		return fmt.Errorf("building testdata/statsapp: %v\n%s", err, out)
	}
	tarball := filepath.Join(workDir, "statsapp.tar")
	if out, err := exec.Command("tar", "-C", filepath.Dir(app), "-cf", tarball, "statsapp").CombinedOutput(); err != nil {
		return fmt.Errorf("tar: %v: %s", err, out)
	}
	if out, err := docker(context.Background(), "import",
		"-c", `ENTRYPOINT ["/statsapp"]`, "-c", "EXPOSE 8080", tarball, image); err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}

	for i, fam := range []string{familyWeb, familyWeb, familyAPI} {
		tk, err := startTask(fam, "ok", "8080", i)
		if err != nil {
			return err
		}
		healthy = append(healthy, tk)
	}
	for i, mode := range brokenModes {
		tk, err := startTask(familyBad, mode, "8080", i)
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

// startTask runs the test app like the ECS agent runs a task container in
// bridge mode; publish is docker's -p argument for container port 8080.
func startTask(family, mode, publish string, n int) (task, error) {
	b := make([]byte, 16)
	rand.Read(b)
	taskID := hex.EncodeToString(b)
	name := fmt.Sprintf("ecs-%s-1-app-%d%s", family, n, taskID[:8])
	arn := "arn:aws:ecs:ap-northeast-1:123456789012:task/" + cluster + "/" + taskID
	out, err := docker(context.Background(), "run", "-d", "--name", name,
		"-p", publish,
		"-e", "STATSAPP_MODE="+mode,
		"-l", "com.amazonaws.ecs.cluster="+cluster,
		"-l", "com.amazonaws.ecs.task-definition-family="+family,
		"-l", "com.amazonaws.ecs.task-definition-version=1",
		"-l", "com.amazonaws.ecs.container-name=app",
		"-l", "com.amazonaws.ecs.task-arn="+arn,
		image)
	if err != nil {
		return task{}, fmt.Errorf("%v: %s", err, out)
	}
	tk := task{name: name, id: strings.TrimSpace(out), family: family, mode: mode}
	out, err = docker(context.Background(), "port", tk.id, "8080/tcp")
	if err != nil {
		return task{}, fmt.Errorf("%v: %s", err, out)
	}
	// e.g. "0.0.0.0:32768\n[::]:32768\n"
	first, _, _ := strings.Cut(out, "\n")
	tk.port = first[strings.LastIndex(first, ":")+1:]
	if tk.port == "" {
		return task{}, fmt.Errorf("no host port for %s in %q", name, out)
	}
	return tk, nil
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

// cleanup removes this run's containers (found by its cluster label, so
// replaced tasks are included) and its image, nothing else.
func cleanup() {
	ctx := context.Background()
	out, err := docker(ctx, "ps", "-aq", "--filter", "label=com.amazonaws.ecs.cluster="+cluster)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err, out)
	}
	if ids := strings.Fields(out); len(ids) > 0 {
		if out, err := docker(ctx, append([]string{"rm", "-f"}, ids...)...); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err, out)
		}
	}
	if out, err := docker(ctx, "rmi", image); err != nil {
		fmt.Fprintln(os.Stderr, "cleanup:", err, out)
	}
}
