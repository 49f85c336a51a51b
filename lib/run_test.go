package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	stats_api "github.com/fukata/golang-stats-api-handler"
)

// dockerAPI stands in for dockerd on a unix socket, for faults a real
// daemon does not show on demand and for fleets larger than this machine
// runs. It answers /_ping as dockerd 20.10 does (API-Version 1.41) and
// /v1.41/containers/json with containers, or with fault when set, and
// keeps a log of the requests.
func dockerAPI(t *testing.T, containers []container.Summary, fault http.HandlerFunc) (host string, requests func() []string) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.41")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("/v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		if fault != nil {
			fault(w, r)
			return
		}
		json.NewEncoder(w).Encode(containers)
	})
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var log []string
	logged := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		log = append(log, r.Method+" "+r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	})
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: logged}}
	srv.Start()
	t.Cleanup(srv.Close)
	return "unix://" + sock, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), log...)
	}
}

// fleet starts n loopback stats endpoints, each served by handler(i), and
// returns containers publishing them, shaped like the real capture (one
// 0.0.0.0 and one :: binding per port).
func fleet(t *testing.T, n int, handler func(i int) http.Handler) []container.Summary {
	t.Helper()
	template := loadContainers(t, "containers.json")[6] // ecs-web-3-web
	var cs []container.Summary
	for i := 0; i < n; i++ {
		srv := httptest.NewServer(handler(i))
		t.Cleanup(srv.Close)
		port := uint16(srv.Listener.Addr().(*net.TCPAddr).Port)
		c := template
		c.ID = fmt.Sprintf("%012x%052d", i+1, 0)
		c.Names = []string{fmt.Sprintf("/ecs-web-3-web-%04d", i)}
		c.Ports = []container.Port{
			{IP: "0.0.0.0", PrivatePort: 8080, PublicPort: port, Type: "tcp"},
			{IP: "::", PrivatePort: 8080, PublicPort: port, Type: "tcp"},
		}
		cs = append(cs, c)
	}
	return cs
}

var realHandler = http.HandlerFunc(stats_api.Handler)

// TestMain lets the tests run the plugin as a process of its own (this test
// binary, re-executed): the helper prints to the process's stdout, and the
// process's time and memory are what a run costs.
func TestMain(m *testing.M) {
	if os.Getenv("MPECSGOSTATS_TEST_AS_PLUGIN") == "1" {
		os.Exit(Do("test"))
	}
	os.Exit(m.Run())
}

// pluginRun is what one run of the plugin process gave.
type pluginRun struct {
	keys    []string // metric keys on stdout
	stderr  []string // stderr lines, less the helper's timestamped log lines
	code    int
	wall    time.Duration
	peakRSS int64 // bytes
}

var helperLogLine = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

func runPlugin(t *testing.T, args ...string) pluginRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "MPECSGOSTATS_TEST_AS_PLUGIN=1")
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	start := time.Now()
	err := cmd.Run()
	r := pluginRun{wall: time.Since(start), code: cmd.ProcessState.ExitCode()}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	r.peakRSS = cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	for _, l := range strings.Split(strings.TrimSpace(outBuf.String()), "\n") {
		if l != "" {
			r.keys = append(r.keys, strings.Split(l, "\t")[0])
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(errBuf.String()), "\n") {
		if l != "" && !helperLogLine.MatchString(l) {
			r.stderr = append(r.stderr, l)
		}
	}
	return r
}

func TestRunDaemonAnswersBadly(t *testing.T) {
	tests := []struct {
		name  string
		fault http.HandlerFunc
		want  string
	}{
		{"500 as dockerd sends it", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusInternalServerError)
			w.Write(readTestdata(t, "docker_500.json"))
		}, "cannot list containers at %s: Error response from daemon: invalid character 'b' looking for beginning of object key string"},
		{"garbage", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte("\x00\x01garbage"))
		}, "cannot list containers at %s: invalid character '\\x00' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, _ := dockerAPI(t, nil, tt.fault)
			run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
			want := "mackerel-plugin-ecs-gostats: " + fmt.Sprintf(tt.want, host)
			if run.code != 1 || len(run.keys) != 0 || len(run.stderr) != 1 || run.stderr[0] != want {
				t.Errorf("exit %d, keys %v, stderr %q\nwant exit 1 and %q", run.code, run.keys, run.stderr, want)
			}
		})
	}
}

// TestRunContainerVanished: a container listed by the daemon is gone when
// its port is scraped: one warning, the other task still reported.
func TestRunContainerVanished(t *testing.T) {
	cs := fleet(t, 2, func(int) http.Handler { return realHandler })
	gone := httptest.NewServer(realHandler)
	gonePort := gone.Listener.Addr().(*net.TCPAddr).Port
	gone.Close()
	cs[1].Ports[0].PublicPort, cs[1].Ports[1].PublicPort = uint16(gonePort), uint16(gonePort)

	host, _ := dockerAPI(t, cs, nil)
	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	want := fmt.Sprintf("warning: scrape http://127.0.0.1:%d/stats (container ecs-web-3-web-0001 %s): dial tcp 127.0.0.1:%d: connect: connection refused", gonePort, cs[1].ID[:12], gonePort)
	if run.code != 0 || len(run.stderr) != 1 || run.stderr[0] != want {
		t.Errorf("exit %d, stderr %q\nwant %s", run.code, run.stderr, want)
	}
	if len(run.keys) != 11 || !strings.HasPrefix(run.keys[0], fmt.Sprintf("gostats.%d.", cs[0].Ports[0].PublicPort)) {
		t.Errorf("keys of the live task: %v", run.keys)
	}
}

// TestRunFaultsAtScale: 1000 targets of which 100 hang, 100 refuse and 100
// send 64 MiB bodies. The run ends by the timeout and every good target is
// reported.
func TestRunFaultsAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("1000 loopback servers")
	}
	const n = 1000
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	big := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := bytes.Repeat([]byte(" "), 64<<10)
		for i := 0; i < 1024 && r.Context().Err() == nil; i++ {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	kind := func(i int) string {
		return [...]string{"hang", "refuse", "big", "good", "good", "good", "good", "good", "good", "good"}[i%10]
	}
	cs := fleet(t, n, func(i int) http.Handler {
		switch kind(i) {
		case "hang":
			return hang
		case "big":
			return big
		}
		return realHandler
	})
	// Refusing targets: their port was published, nothing listens now.
	var closed []net.Listener
	for i := range cs {
		if kind(i) == "refuse" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			closed = append(closed, l)
			p := uint16(l.Addr().(*net.TCPAddr).Port)
			cs[i].Ports[0].PublicPort, cs[i].Ports[1].PublicPort = p, p
		}
	}
	for _, l := range closed {
		l.Close()
	}
	wantPorts := map[string]bool{}
	for i, c := range cs {
		if kind(i) == "good" {
			wantPorts[fmt.Sprint(c.Ports[0].PublicPort)] = true
		}
	}

	timeout := 2 * time.Second
	host, _ := dockerAPI(t, cs, nil)
	run := runPlugin(t, "--docker-host", host, "--timeout", timeout.String(),
		"--concurrency", "128", "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 {
		t.Fatalf("exit %d", run.code)
	}
	// The N = 1000 memory target holds even with 100 64 MiB bodies (at most
	// 128 bodies of at most 256 KiB are read at once).
	if run.peakRSS > 64<<20 {
		t.Errorf("peak RSS %d MiB", run.peakRSS>>20)
	}
	t.Logf("1000 targets, 300 broken: %s, peak RSS %.1f MiB", run.wall.Round(time.Millisecond), float64(run.peakRSS)/(1<<20))
	gotPorts := map[string]int{}
	for _, k := range run.keys {
		gotPorts[strings.Split(k, ".")[1]]++
	}
	for p := range wantPorts {
		if gotPorts[p] != 11 {
			t.Errorf("good port %s: %d keys, want 11", p, gotPorts[p])
		}
	}
	if len(gotPorts) != len(wantPorts) {
		t.Errorf("%d ports reported, want %d", len(gotPorts), len(wantPorts))
	}
	causes := map[string]int{}
	for _, l := range run.stderr {
		cause := l[strings.Index(l, "): ")+3:]
		switch {
		case strings.HasPrefix(cause, "dial tcp"):
			cause = "refused"
		case strings.HasPrefix(cause, "no answer within"):
			cause = "hang"
		case strings.HasPrefix(cause, "response body exceeds"):
			cause = "big"
		}
		causes[cause]++
	}
	want := map[string]int{"refused": 100, "hang": 100, "big": 100}
	if fmt.Sprint(causes) != fmt.Sprint(want) {
		t.Errorf("warnings by cause: %v, want %v", causes, want)
	}
	// The bound a hung target may hold the run; generous for a shared machine.
	if run.wall > timeout+3*time.Second {
		t.Errorf("run took %s with --timeout %s", run.wall, timeout)
	}
}

// TestRunNegotiatesWhenVersionRefused: a daemon that refuses API 1.41 (as
// Docker 29 does, with the message of moby's version middleware) is asked
// again at the version it announces; counted requests show the one extra
// round trip is paid only then.
func TestRunNegotiatesWhenVersionRefused(t *testing.T) {
	cs := fleet(t, 1, func(int) http.Handler { return realHandler })
	var requests []string
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		requests = append(requests, r.Method+" "+r.URL.Path)
		w.Header().Set("API-Version", "1.51")
		switch r.URL.Path {
		case "/_ping":
			w.Write([]byte("OK"))
		case "/v1.51/containers/json":
			json.NewEncoder(w).Encode(cs)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"message":"client version 1.41 is too old. Minimum supported API version is 1.44, please upgrade your client to a newer version"}` + "\n"))
		}
	})
	sock := filepath.Join(t.TempDir(), "docker.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: l, Config: &http.Server{Handler: mux}}
	srv.Start()
	defer srv.Close()

	run := runPlugin(t, "--docker-host", "unix://"+sock, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != 11 {
		t.Errorf("exit %d, %d keys, stderr %q", run.code, len(run.keys), run.stderr)
	}
	want := "GET /v1.41/containers/json,HEAD /_ping,GET /v1.51/containers/json"
	if got := strings.Join(requests, ","); got != want {
		t.Errorf("requests %s\nwant %s", got, want)
	}
}

// TestRunOneDaemonRequest: against a daemon that serves API 1.41, a run
// makes exactly one request to it.
func TestRunOneDaemonRequest(t *testing.T) {
	host, requests := dockerAPI(t, fleet(t, 2, func(int) http.Handler { return realHandler }), nil)
	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != 22 || strings.Join(requests(), ",") != "GET /v1.41/containers/json" {
		t.Errorf("exit %d, %d keys, daemon requests %q", run.code, len(run.keys), requests())
	}
}

// TestRunDockerHostTCP: a daemon on tcp:// (dockerd -H tcp://127.0.0.1:2375).
func TestRunDockerHostTCP(t *testing.T) {
	cs := fleet(t, 1, func(int) http.Handler { return realHandler })
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.41/containers/json", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(cs)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	host := "tcp://" + strings.TrimPrefix(srv.URL, "http://")
	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != 11 || len(run.stderr) != 0 {
		t.Errorf("exit %d, %d keys, stderr %q", run.code, len(run.keys), run.stderr)
	}
}
