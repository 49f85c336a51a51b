package main

// The service identity over OTLP (docs/otlp.md, "Resource attributes"):
// tasks on the real Docker Engine whose containers say their service in
// their environment or a label, the plugin's own OTEL_RESOURCE_ATTRIBUTES,
// and the real Collector receiving them; a secret in a container's
// environment shows nowhere.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
)

// svcTask is a task of TestOTLPServiceIdentity and what its resource says.
type svcTask struct {
	name   string
	args   []string // scripts/ecs-task.sh run arguments after the family
	want   map[string]string
	listed string // its --list column
	id     string
}

func TestOTLPServiceIdentity(t *testing.T) {
	needDocker(t)
	cluster := ownCluster(t, "otlp-svc")
	b := make([]byte, 16)
	rand.Read(b)
	secret := "itest-secret-" + hex.EncodeToString(b)
	daemonName, err := docker(context.Background(), "info", "--format", "{{.Name}}")
	if err != nil {
		t.Fatalf("%v: %s", err, daemonName)
	}
	daemonName = strings.TrimSpace(daemonName)
	imageName, imageTag, _ := strings.Cut(image, ":")

	// The plugin's own OTEL_RESOURCE_ATTRIBUTES: deployment.environment.name
	// prod and team x for every resource, a container's own values winning;
	// its service.name and OTEL_SERVICE_NAME rename no task.
	pluginEnv := []string{"OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=prod,team=x,service.name=plugin-self", "OTEL_SERVICE_NAME=plugin-self"}
	tasks := []*svcTask{
		{name: "checkout", args: []string{"--container-name", "checkout", "--env", "OTEL_SERVICE_NAME=checkout", "--env", "SECRET=" + secret},
			want:   map[string]string{"service.name": "checkout", "deployment.environment.name": "prod", "team": "x"},
			listed: "service.name=checkout (OTEL_SERVICE_NAME)"},
		{name: "billing", args: []string{"--container-name", "billing", "--env", "OTEL_SERVICE_NAME=not-this", "--env", "SECRET=" + secret,
			"--", "--label", "gostats.service.name=billing"},
			want:   map[string]string{"service.name": "billing", "deployment.environment.name": "prod", "team": "x"},
			listed: "service.name=billing (label)"},
		{name: "cart", args: []string{"--container-name", "cart",
			"--env", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop,deployment.environment.name=staging%20eu,service.name=cart,token=" + secret},
			want:   map[string]string{"service.name": "cart", "service.namespace": "shop", "deployment.environment.name": "staging eu", "team": "x"},
			listed: "service.name=cart (OTEL_RESOURCE_ATTRIBUTES)"},
		{name: "plain", args: []string{"--container-name", "plain"},
			want:   map[string]string{"service.name": "svc", "deployment.environment.name": "prod", "team": "x"},
			listed: "service.name=svc (family)"},
		{name: "malformed", args: []string{"--container-name", "malformed", "--env", "OTEL_RESOURCE_ATTRIBUTES=service.name=bad," + secret},
			want:   map[string]string{"service.name": "svc", "deployment.environment.name": "prod", "team": "x"},
			listed: "service.name=svc (family)"},
	}
	var containerName string // of the malformed one
	for _, tk := range tasks {
		task := mustRunTask(t, cluster, "svc", tk.args...)
		tk.id = task.id
		if tk.name == "malformed" {
			containerName = task.name
		}
		if err := waitAnswers(task); err != nil {
			t.Fatal(err)
		}
	}
	malformedWarning := "warning: container " + containerName + " " + tasks[4].id[:12] + ": its OTEL_RESOURCE_ATTRIBUTES is malformed, ignored whole"

	// checkResources checks the received resources' identity attributes.
	checkResources := func(t *testing.T, got map[string]otlpResource, arn string) {
		t.Helper()
		for _, tk := range tasks {
			r, ok := got[tk.id]
			if !ok {
				t.Errorf("%s: nothing received", tk.name)
				continue
			}
			want := map[string]string{"service.namespace": "", "host.name": daemonName, "aws.ecs.container.arn": arn,
				"container.image.name": imageName, "container.image.tags": "[" + imageTag + "]"}
			for k, v := range tk.want {
				want[k] = v
			}
			for k, v := range want {
				if r.attrs[k] != v {
					t.Errorf("%s: %s = %q, want %q", tk.name, k, r.attrs[k], v)
				}
			}
			if v, ok := r.value(otlpHandlerSeries[0]); !ok || v != 1 {
				t.Errorf("%s: up %v (%v)", tk.name, v, ok)
			}
		}
	}
	// noSecret checks that the secret is in none of texts nor in anything
	// the collector received.
	noSecret := func(t *testing.T, texts map[string]string, got map[string]otlpResource) {
		t.Helper()
		for what, text := range texts {
			if strings.Contains(text, secret) {
				t.Errorf("the container's secret is in %s", what)
			}
		}
		for id, r := range got {
			for k, v := range r.attrs {
				if strings.Contains(k+"="+v, secret) {
					t.Errorf("the container's secret is in the export: resource %s attribute %s", id[:12], k)
				}
			}
			for _, p := range r.points {
				if strings.Contains(p.series, secret) {
					t.Errorf("the container's secret is in the export: %s", p.series)
				}
			}
		}
	}

	t.Run("from the host", func(t *testing.T) {
		col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{})
		state := filepath.Join(t.TempDir(), "state")
		args := []string{"--docker-host", dockerHost, "--label", "com.amazonaws.ecs.cluster=" + cluster, "--timeout", "4s",
			"--ecs-agent-url", withInstanceARN(t, "", cluster, ""),
			"--tempfile", state, "--output", "otlp", "--otlp-endpoint", col.Endpoint, "--otlp-insecure"}
		list := runPlugin(t, pluginEnv, append(slices.Clone(args), "--list")...)
		r := runPlugin(t, pluginEnv, args...)
		if r.code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		if lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], malformedWarning) {
			t.Errorf("stderr:\n%s\nwant one line starting %q", r.stderr, malformedWarning)
		}
		got := otlpReceived(t, col, len(tasks))
		checkResources(t, got, otlpInstanceARN(cluster))

		// --list shows the service and where it came from
		if list.code != 0 {
			t.Fatalf("--list: exit %d: %s", list.code, list.stderr)
		}
		for _, tk := range tasks {
			var line string
			for _, l := range strings.Split(list.stdout, "\n") {
				if strings.Contains(l, tk.id[:12]) {
					line = l
				}
			}
			if !strings.HasSuffix(strings.TrimSpace(line), tk.listed) {
				t.Errorf("--list line of %s: %q, want it to end %q", tk.name, line, tk.listed)
			}
		}

		// A second run reads the environments from the state: the same
		// services, no warning again.
		r2 := runPlugin(t, pluginEnv, args...)
		if r2.code != 0 || r2.stderr != "" {
			t.Errorf("second run: exit %d, stderr:\n%s", r2.code, r2.stderr)
		}
		st, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{`"services":`, `"name":"checkout","from":"OTEL_SERVICE_NAME"`, `"namespace":"shop"`, `"env":"staging eu"`} {
			if !strings.Contains(string(st), w) {
				t.Errorf("state file has no %s:\n%s", w, st)
			}
		}
		noSecret(t, map[string]string{"stdout": r.stdout + r2.stdout, "stderr": r.stderr + r2.stderr, "--list": list.stdout + list.stderr, "the state file": string(st)}, got)
		if strings.Contains(string(st), "SECRET") || strings.Contains(string(st), "token") {
			t.Errorf("the state file has more of the environment than the service identity:\n%s", st)
		}
	})

	// The plugin in a container of its own with the daemon's socket (as a
	// daemon task runs mackerel-agent), on a network of the test's own,
	// reaching the tasks' published ports, the collector and the ECS agent
	// at the host's address on it: host.name is the daemon's name, not the
	// plugin container's.
	t.Run("in a container", func(t *testing.T) {
		sock, ok := strings.CutPrefix(dockerHost, "unix://")
		if !ok {
			t.Skipf("the daemon is at %s, not on a unix socket to mount", dockerHost)
		}
		network, gw := ownNetwork(t, cluster)
		col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{Host: gw})
		agent := withInstanceARN(t, gw, cluster, "")
		pluginImage := pluginImage(t)
		run := []string{"run", "--rm", "--label", "com.amazonaws.ecs.cluster=" + cluster + "-plugin", "--network", network,
			"-v", sock + ":/var/run/docker.sock:ro"}
		for _, e := range pluginEnv {
			run = append(run, "-e", e)
		}
		run = append(run, pluginImage, "--label", "com.amazonaws.ecs.cluster="+cluster, "--host", gw, "--timeout", "4s", "--ecs-agent-url", agent,
			"--output", "otlp", "--otlp-endpoint", col.Endpoint, "--otlp-insecure")
		r, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost), "docker", run...)
		if err != nil || r.code != 0 {
			t.Fatalf("docker run: %v, exit %d, stderr:\n%s", err, r.code, r.stderr)
		}
		if lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], malformedWarning) {
			t.Errorf("stderr:\n%s\nwant one line starting %q", r.stderr, malformedWarning)
		}
		got := otlpReceived(t, col, len(tasks))
		checkResources(t, got, otlpInstanceARN(cluster))
		noSecret(t, map[string]string{"stdout": r.stdout, "stderr": r.stderr}, got)
	})
}

// otlpInstanceARN is the container instance ARN the ECS agent stand-in of
// withInstanceARN answers for a cluster.
func otlpInstanceARN(cluster string) string {
	return "arn:aws:ecs:ap-northeast-1:123456789012:container-instance/" + cluster + "/0f1e2d3c4b5a69788796a5b4c3d2e1f0"
}

// withInstanceARN is an ECS agent stand-in on host (an IP address of this
// host, "" for loopback) that answers
// GET /v1/metadata as the ECS agent does, with otlpInstanceARN(cluster), and
// hands anything else to the agent at tasksURL ("" for none: 404): with an
// output that labels series the plugin asks the agent for its container
// instance's ARN. It returns its URL.
func withInstanceARN(t *testing.T, host, cluster, tasksURL string) string {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	var next http.Handler = http.NotFoundHandler()
	if tasksURL != "" {
		u, err := url.Parse(tasksURL)
		if err != nil {
			t.Fatal(err)
		}
		next = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/metadata" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"Cluster":%q,"ContainerInstanceArn":%q,"Version":"Amazon ECS Agent - v1.89.2 (3ec7ca9e)"}`, cluster, otlpInstanceARN(cluster))
	}))
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}
