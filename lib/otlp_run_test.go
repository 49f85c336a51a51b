package mpecsgostats

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelcoltest"
)

// TestRunOTLP: a run with --output otlp sends every target to a real
// collector as its own resource, prints only the health lines, and shows
// the API key nowhere.
func TestRunOTLP(t *testing.T) {
	col := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{HeaderAttribute: otlpHeaderAttr})
	t.Setenv(envAPIKey, otlpTestKey)
	ports := fleet(t, 2, func(int) http.Handler { return realHandler })
	host := fleetDocker(t, append(ports, uint16(refusingPort(t)))...)
	state := t.TempDir() + "/state"

	r := runIn(t, host, "--output", "otlp", "--otlp-endpoint", col.Endpoint, "--otlp-insecure", "--tempfile="+state,
		"--ecs-agent-url", ecsAgentMetadata(t))
	if r.code != 0 || len(r.stderr) != 1 || !strings.Contains(r.stderr[0], "connect: connection refused") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if len(r.keys) != 0 {
		t.Errorf("task values on stdout with --output otlp: %q", r.keys)
	}
	health := healthValues(t, r.stdout)
	if want := map[string]float64{"targets.found": 3, "targets.ok": 2, "targets.failed": 1, "discovery.errors": 0, "otlp.errors": 0}; !subset(want, health) {
		t.Errorf("health %v, want %v", health, want)
	}

	got := col.WaitMetrics(t, 3, 10*time.Second)
	if len(got) != 3 {
		t.Fatalf("%d resources, want 3", len(got))
	}
	for i, rm := range got {
		attrs := map[string]string{}
		for _, kv := range rm.Resource.Attributes {
			attrs[kv.Key] = kv.Value.GetStringValue()
		}
		if attrs["service.name"] != "web" || attrs["aws.ecs.task.family"] != "web" || attrs["container.name"] != "web" ||
			attrs["cloud.platform"] != "aws_ecs" || attrs["aws.ecs.launchtype"] != "ec2" || attrs["host.name"] == "" ||
			attrs["service.instance.id"] != attrs["aws.ecs.task.id"]+"/web:8080" {
			t.Errorf("resource %d attributes %v", i, attrs)
		}
		names := map[string]string{}
		for _, row := range otlpRows(rm) {
			names[row.metric] = row.value
			if !strings.Contains(row.attrs, otlpHeaderAttr+"="+otlpTestKey) {
				t.Errorf("resource %d %s: the key did not arrive as the header (attributes %s)", i, row.metric, row.attrs)
			}
		}
		up := names[otlpUpMetric]
		if up == "1" && (names["go.goroutine.count"] == "" || names["go.memory.allocated"] == "") || up != "1" && len(names) != 1 {
			t.Errorf("resource %d series %v", i, names)
		}
	}

	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stdout": r.stdout, "stderr": strings.Join(r.stderr, "\n"), "state": string(b)} {
		if strings.Contains(text, otlpTestKey) {
			t.Errorf("the API key is in %s", what)
		}
	}
}

// TestRunOTLPDown: a collector that is down, hangs or refuses TLS costs one
// warning and the otlp.errors figure; the Mackerel lines are unchanged, and
// the run ends within --timeout.
func TestRunOTLPDown(t *testing.T) {
	t.Setenv(envAPIKey, otlpTestKey)
	ports := fleet(t, 1, func(int) http.Handler { return realHandler })
	host := fleetDocker(t, ports...)
	hung, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	plain := otelcoltest.Start(t, otelcoltest.Bin(t), otelcoltest.Options{}) // no TLS, asked for TLS
	const timeout = 2 * time.Second
	tests := []struct {
		name, endpoint string
		insecure       bool
		warning        string
	}{
		{"down", "127.0.0.1:" + strconv.Itoa(refusingPort(t)), true, "connection refused"},
		{"hung", hung.Addr().String(), true, "DeadlineExceeded"},
		{"TLS refused", plain.Endpoint, false, "Unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"--output", "mackerel,otlp", "--otlp-endpoint", tt.endpoint, "--timeout", timeout.String(),
				"--ecs-agent-url", ecsAgentMetadata(t)}
			if tt.insecure {
				args = append(args, "--otlp-insecure")
			}
			r := runIn(t, host, args...)
			if r.code != 0 || len(r.stderr) != 1 || !strings.HasPrefix(r.stderr[0], "warning: otlp "+tt.endpoint+": ") || !strings.Contains(r.stderr[0], tt.warning) {
				t.Errorf("exit %d, stderr %q\nwant one warning naming %s and %q", r.code, r.stderr, tt.endpoint, tt.warning)
			}
			if len(r.keys) != gaugesPerTask() {
				t.Errorf("%d Mackerel keys, want %d", len(r.keys), gaugesPerTask())
			}
			if h := healthValues(t, r.stdout); h["otlp.errors"] != 1 || h["targets.ok"] != 1 {
				t.Errorf("health %v", h)
			}
			if r.wall > timeout+time.Second {
				t.Errorf("run took %s with --timeout %s", r.wall, timeout)
			}
			if strings.Contains(r.stdout+strings.Join(r.stderr, ""), otlpTestKey) {
				t.Error("the API key is in the output")
			}
		})
	}
}

// healthValues are the health lines of stdout by "<graph>.<metric>".
func healthValues(t *testing.T, stdout string) map[string]float64 {
	t.Helper()
	h := map[string]float64{}
	for _, l := range parseLines(t, stdout) {
		if k, ok := strings.CutPrefix(l.key, "gostats_scrape."); ok {
			h[k] = l.value
		}
	}
	return h
}

func subset(want, got map[string]float64) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// ecsAgentMetadata is the ECS agent's GET /v1/metadata on loopback, for
// the container instance's ARN an output that labels series asks for; it
// returns its URL.
func ecsAgentMetadata(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/metadata" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"Cluster":"prod","ContainerInstanceArn":"arn:aws:ecs:ap-northeast-1:123456789012:container-instance/prod/0f1e2d3c4b5a69788796a5b4c3d2e1f0","Version":"Amazon ECS Agent - v1.89.2 (3ec7ca9e)"}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
