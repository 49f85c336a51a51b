package mpecsgostats

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A format, an output and a source of the tests' own (seam_*_test.go), each
// one file and one line here, run through run as the plugin's own are.

// seamParts are the plugin's parts and the tests' own, one line each; the
// static source lists targets.
func seamParts(now func() time.Time, targets []target) parts {
	p := defaultParts(now)
	p.formats = append(p.formats, kvFormat{})
	p.outputs = append(p.outputs, outputKind{name: "capture", open: openCaptureOutput})
	p.sources = append(p.sources, sourceKind{name: "static", open: func(opts options, env sourceEnv) source {
		return staticSource{targets: targets, timeout: env.timeout}
	}})
	return p
}

// kvServer serves kv-stats at /kv, gcs growing by 60 an answer, and 404
// anywhere else. It returns the target of it.
func kvServer(t *testing.T) target {
	t.Helper()
	var gcs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/kv" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "kv-stats\ngoroutines 12\nalloc 1000\ngcs %d\n", gcs.Add(60))
	}))
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	p, _ := strconv.Atoi(port)
	return target{ContainerID: "5ea45ea45ea45ea4", ContainerName: "web-a", Family: "web", Created: 1700000000,
		Host: "127.0.0.1", Port: uint16(p), PrivatePort: 8080}
}

func runSeams(t *testing.T, now time.Time, targets []target, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), seamParts(func() time.Time { return now }, targets), args, "test", &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestSeams(t *testing.T) {
	targets := []target{kvServer(t)}
	state := filepath.Join(t.TempDir(), "state")
	t0 := time.Unix(1800000000, 0)
	base := []string{"--source", "static", "--output", "mackerel,capture", "--key", "{family}-{slot}", "--tempfile", state, "--timeout", "5s"}

	tests := []struct {
		name   string
		now    time.Time
		args   []string
		stdout []string
		stderr string
	}{
		{"the format by --format", t0, []string{"--format", "kv"},
			[]string{
				"gostats.web-1.runtime.goroutine_num\t12.000000\t1800000000",
				"gostats.web-1.memory.memory_alloc\t1000.000000\t1800000000",
				`capture web-a key="web-1" host=static-host up=true goroutines=12`,
				"gostats_scrape.targets.found\t1.000000\t1800000000",
				"gostats_scrape.targets.ok\t1.000000\t1800000000",
				"gostats_scrape.targets.failed\t0.000000\t1800000000",
				"gostats_scrape.run.seconds\t0.000000\t1800000000",
				"gostats_scrape.discovery.errors\t0.000000\t1800000000",
				"gostats_scrape.capture.errors\t0.000000\t1800000000",
			},
			// the capture output keeps a fifth of --timeout: the source is given the rest
			"warning: static source: given 4s\n"},
		{"a minute later: what the format derives", t0.Add(time.Minute), []string{"--format", "kv"},
			[]string{
				"gostats.web-1.runtime.goroutine_num\t12.000000\t1800000060",
				"gostats.web-1.memory.memory_alloc\t1000.000000\t1800000060",
				"gostats.web-1.gc.gc_per_second\t1.000000\t1800000060", // 60 collections in 60 s
				`capture web-a key="web-1" host=static-host up=true goroutines=12`,
				"gostats_scrape.targets.found\t1.000000\t1800000060",
				"gostats_scrape.targets.ok\t1.000000\t1800000060",
				"gostats_scrape.targets.failed\t0.000000\t1800000060",
				"gostats_scrape.run.seconds\t0.000000\t1800000060",
				"gostats_scrape.discovery.errors\t0.000000\t1800000060",
				"gostats_scrape.capture.errors\t0.000000\t1800000060",
			},
			"warning: static source: given 4s\n"},
		{"the source's words for a placeholder it has no value for", t0, []string{"--format", "kv", "--key", "{task}", "--output", "mackerel,capture", "--no-health"},
			[]string{`capture web-a key="" host=static-host up=true goroutines=12`},
			"warning: static source: given 4s\n" +
				`warning: container web-a 5ea45ea45ea4 (port 8080) skipped: --key "{task}" uses {task}, but the static list gives it no task; use a --key without it, or filter the container out` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runSeams(t, tt.now, targets, append(base, tt.args...)...)
			if code != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr)
			}
			if want := strings.Join(tt.stdout, "\n") + "\n"; stdout != want {
				t.Errorf("stdout:\n%s\nwant:\n%s", stdout, want)
			}
			if stderr != tt.stderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", stderr, tt.stderr)
			}
		})
	}
}

// TestSeamsAuto: --format auto probes the test format's default path after
// the plugin's own, and --list says so.
func TestSeamsAuto(t *testing.T) {
	targets := []target{kvServer(t)}
	code, stdout, stderr := runSeams(t, time.Unix(1800000000, 0), targets, "--source", "static", "--format", "auto", "--key", "{family}-{slot}",
		"--tempfile", filepath.Join(t.TempDir(), "state"), "--list")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	fields := strings.Fields(stdout)
	want := []string{"web-a", "5ea45ea45ea4", "web", "-", "web-1", "ok", "0s", "kv", "(probe)", "at", "/kv", "(probe)"}
	addr := targets[0].Addr()
	want[3] = addr
	if strings.Join(fields, " ") != strings.Join(want, " ") {
		t.Errorf("--list:\n%s\nwant the fields %q", stdout, want)
	}
}

// TestSeamsMeta: the test output's graphs and its errors graph are in meta
// mode's definitions.
func TestSeamsMeta(t *testing.T) {
	t.Setenv("MACKEREL_AGENT_PLUGIN_META", "1")
	code, stdout, stderr := runSeams(t, time.Unix(1800000000, 0), nil, "--source", "static", "--output", "capture")
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	for _, want := range []string{
		`"capture.#":{"label":"Capture","unit":"integer","metrics":[{"name":"up","label":"Up","stacked":false}]}`,
		`"gostats_scrape.capture":{"label":"Gostats Scrape Capture","unit":"integer","metrics":[{"name":"errors","label":"Errors","stacked":false}]}`,
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("meta output has no %s:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, `"gostats.#.runtime"`) {
		t.Errorf("meta output has the Mackerel output's graphs without mackerel in --output:\n%s", stdout)
	}
}

// TestSeamsStayInTheirTest: the plugin's own parts know nothing of the
// tests' own.
func TestSeamsStayInTheirTest(t *testing.T) {
	tests := []struct{ args, stderr string }{
		{"--format kv", "mackerel-plugin-ecs-gostats: Invalid value `kv' for option `--format'. Allowed values are: gostats, prometheus, expvar or auto\n"},
		{"--source static", "mackerel-plugin-ecs-gostats: Invalid value `static' for option `--source'. Allowed values are: docker or task-metadata\n"},
		{"--output capture", `mackerel-plugin-ecs-gostats: --output "capture": unknown output "capture" (valid: mackerel,otlp)` + "\n"},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), defaultParts(time.Now), strings.Fields(tt.args), "test", &stdout, &stderr)
		if code != 2 || stdout.Len() != 0 || stderr.String() != tt.stderr {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2, nothing, %q", tt.args, code, stdout.String(), stderr.String(), tt.stderr)
		}
	}
}
