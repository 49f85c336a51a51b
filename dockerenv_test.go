package main

// The integration harness: TestMain builds the plugin; the first test that
// needs Docker imports the test app as an image into the daemon at
// $DOCKER_HOST and starts ECS-like tasks on dynamic host ports, all through
// scripts/ecs-task.sh. Everything it creates carries a per-run cluster label
// (or one derived from it, see ownCluster) and image tag, and is removed at
// the end. The shared tasks (healthy, broken) are only read by the tests.

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

	// testdata/statsapp serves this handler; go mod tidy skips testdata, so
	// this import keeps the module in go.mod.
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/testenv"
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
		if err := cleanup(); err != nil {
			fmt.Fprintln(os.Stderr, "cleanup:", err)
			code = 1
		}
	}
	return code
}

// needDocker starts this run's tasks the first time a test needs them. With
// no daemon answering it skips the test, or fails it when CI is set.
func needDocker(t *testing.T) {
	t.Helper()
	dockerOnce.Do(func() { dockerErr = startTasks() })
	if dockerSkip != "" {
		skipUnlessCI(t, dockerSkip)
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
	tk, err := runTask(cluster, family, "--mode", mode, "--publish", publish)
	if err == nil && tk.port == "" {
		err = fmt.Errorf("task %s publishes no host port", tk.name)
	}
	return tk, err
}

// runTask starts a task container of family in cluster with
// scripts/ecs-task.sh run and its further arguments (see the script), e.g.
// "--publish", "none", "--", "--network", "container:<id>".
func runTask(cluster, family string, args ...string) (task, error) {
	out, err := ecsTask(append([]string{"run", "--image", image, "--cluster", cluster, "--family", family}, args...)...)
	if err != nil {
		return task{}, err
	}
	// <container id> <name> <host port of 8080/tcp on its IPv4 binding, or ->
	f := strings.Fields(out)
	if len(f) != 3 || len(f[0]) != 64 {
		return task{}, fmt.Errorf("scripts/ecs-task.sh run printed %q, want <id> <name> <port>", out)
	}
	tk := task{id: f[0], name: f[1], port: strings.TrimPrefix(f[2], "-"), family: family, mode: "ok"}
	for i, a := range args {
		if a == "--mode" && i+1 < len(args) {
			tk.mode = args[i+1]
		}
	}
	return tk, nil
}

// mustRunTask is runTask that fails the test on an error.
func mustRunTask(t *testing.T, cluster, family string, args ...string) task {
	t.Helper()
	tk, err := runTask(cluster, family, args...)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// ownNetwork creates a Docker network of the test's own (where an awsvpc
// task's ENI would be) and returns its name and its gateway, the host's
// address on it. It is removed, after cluster's containers, when the test
// ends.
func ownNetwork(t *testing.T, cluster string) (name, gateway string) {
	t.Helper()
	name = cluster + "-net"
	if out, err := docker(context.Background(), "network", "create", "--label", "com.amazonaws.ecs.cluster="+cluster, name); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() {
		if _, err := ecsTask("rm", "--cluster", cluster); err != nil {
			t.Error(err)
		}
		if out, err := docker(context.Background(), "network", "rm", name); err != nil {
			t.Errorf("%v: %s", err, out)
		}
	})
	out, err := docker(context.Background(), "network", "inspect", "-f", "{{(index .IPAM.Config 0).Gateway}}", name)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return name, strings.TrimSpace(out)
}

// containerAddress is a container's IPv4 address on network.
func containerAddress(t *testing.T, id, network string) string {
	t.Helper()
	out, err := docker(context.Background(), "inspect", "-f", fmt.Sprintf("{{(index .NetworkSettings.Networks %q).IPAddress}}", network), id)
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return strings.TrimSpace(out)
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
	if err := waitURL("http://127.0.0.1:" + tk.port + path); err != nil {
		return fmt.Errorf("task %s does not answer: %v", tk.name, err)
	}
	return nil
}

// waitURL waits until url answers 200, for at most 30 s.
func waitURL(url string) error {
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
			return fmt.Errorf("%s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pluginImage imports the built plugin, and mackerel-agent when
// MACKEREL_AGENT_BIN is set, as an image whose entrypoint is the plugin (an
// agent image with the plugin added, as the examples build), with an empty
// /tmp. It is removed when the test ends.
func pluginImage(t *testing.T) string {
	t.Helper()
	files := map[string]string{"mackerel-plugin-ecs-gostats": pluginBin}
	if agent := os.Getenv("MACKEREL_AGENT_BIN"); agent != "" {
		files["mackerel-agent"] = agent
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b, err := os.ReadFile(files[name])
		if err != nil {
			t.Fatal(err)
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o755, Size: int64(len(b))})
		tw.Write(b)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(t.TempDir(), "plugin.tar")
	if err := os.WriteFile(tarball, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	tag := fmt.Sprintf("ecs-gostats-plugin:itest-%s-%d", runID, time.Now().UnixNano())
	if out, err := docker(context.Background(), "import", "-c", `ENTRYPOINT ["/mackerel-plugin-ecs-gostats"]`, tarball, tag); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() {
		// after the containers made from it, whichever cleanup removes them
		ids, err := docker(context.Background(), "ps", "-aq", "--filter", "ancestor="+tag)
		if f := strings.Fields(ids); err == nil && len(f) > 0 {
			docker(context.Background(), append([]string{"rm", "-f"}, f...)...)
		}
		if out, err := docker(context.Background(), "rmi", tag); err != nil {
			t.Errorf("%v: %s", err, out)
		}
	})
	return tag
}

// cleanup removes this run's shared tasks and its image, and fails when
// anything else of this run is left on the daemon.
func cleanup() error {
	if _, err := ecsTask("rm", "--cluster", cluster, "--image", image); err != nil {
		return err
	}
	// Whatever a test left behind (its own clusters are named after this
	// run's, its images tagged with the run id) fails the run.
	ctx := context.Background()
	labels, err := docker(ctx, "ps", "-a", "--format", `{{.Label "com.amazonaws.ecs.cluster"}}`)
	if err != nil {
		return err
	}
	images, err := docker(ctx, "images", "--format", "{{.Repository}}:{{.Tag}}")
	if err != nil {
		return err
	}
	networks, err := docker(ctx, "network", "ls", "--format", "{{.Name}}")
	if err != nil {
		return err
	}
	var left []string
	for _, n := range strings.Fields(networks) {
		if strings.HasPrefix(n, cluster) {
			left = append(left, "network "+n)
		}
	}
	for _, l := range strings.Fields(labels) {
		if strings.HasPrefix(l, cluster) {
			left = append(left, "a container of cluster "+l)
		}
	}
	for _, i := range strings.Fields(images) {
		if strings.Contains(i, runID) {
			left = append(left, "image "+i)
		}
	}
	if len(left) > 0 {
		return fmt.Errorf("tests left behind %s", strings.Join(left, ", "))
	}
	return nil
}

// skipUnlessCI and toolBin: see internal/testenv.
var (
	skipUnlessCI = testenv.SkipUnlessCI
	toolBin      = testenv.Tool
)
