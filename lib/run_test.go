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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
	stats_api "github.com/fukata/golang-stats-api-handler"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// fleet starts n loopback stats endpoints, each served by handler(i), and
// returns their ports.
func fleet(t *testing.T, n int, handler func(i int) http.Handler) []uint16 {
	t.Helper()
	var ports []uint16
	for i := 0; i < n; i++ {
		srv := httptest.NewServer(handler(i))
		t.Cleanup(srv.Close)
		ports = append(ports, uint16(srv.Listener.Addr().(*net.TCPAddr).Port))
	}
	return ports
}

// fleetContainers is the /containers/json answer of containers publishing
// ports, built from the real capture by standin.FleetContainers, and the
// containers as the plugin decodes them.
func fleetContainers(t *testing.T, ports []uint16) ([]byte, []engineapi.Summary) {
	t.Helper()
	body, err := standin.FleetContainers(readTestdata(t, "containers.json"), ports)
	if err != nil {
		t.Fatal(err)
	}
	var cs []engineapi.Summary
	if err := json.Unmarshal(body, &cs); err != nil {
		t.Fatal(err)
	}
	return body, cs
}

// gaugesPerTask is how many keys a run prints for a healthy task when there
// is no previous run to diff against: the gauges of metricDefs that are
// printed.
func gaugesPerTask() int {
	n := 0
	for _, m := range metricDefs {
		if !m.diff && !m.hidden {
			n++
		}
	}
	return n
}

var realHandler = http.HandlerFunc(stats_api.Handler)

// TestMain lets the tests run the plugin as a process of its own (this test
// binary, re-executed): the helper prints to the process's stdout, and the
// process's time and memory are what a run costs.
func TestMain(m *testing.M) {
	if os.Getenv("MPECSGOSTATS_TEST_AS_PLUGIN") == "1" {
		code := Do("test")
		if path := os.Getenv("MPECSGOSTATS_TEST_PEAK_RSS"); path != "" {
			// this process's own high-water mark: the wait4 figure would
			// count the test process's, whose memory the child shares until
			// its exec
			status, _ := os.ReadFile("/proc/self/status")
			os.WriteFile(path, status, 0o644)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// pluginRun is what one run of the plugin process gave.
type pluginRun struct {
	stdout  string
	keys    []string // metric keys on stdout, less the health metrics (see health_test.go)
	stderr  []string // stderr lines, less the helper's timestamped log lines
	code    int
	wall    time.Duration
	peakRSS int64 // bytes
}

// peakRSS is VmHWM of a /proc/<pid>/status file, in bytes.
func peakRSS(t *testing.T, statusFile string) int64 {
	t.Helper()
	status, err := os.ReadFile(statusFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in %s", statusFile)
	return 0
}

var helperLogLine = regexp.MustCompile(`^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d `)

func runPlugin(t *testing.T, args ...string) pluginRun {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	rss := filepath.Join(t.TempDir(), "status")
	cmd.Env = append(os.Environ(), "MPECSGOSTATS_TEST_AS_PLUGIN=1", "MPECSGOSTATS_TEST_PEAK_RSS="+rss)
	var outBuf, errBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &errBuf
	start := time.Now()
	err := cmd.Run()
	r := pluginRun{wall: time.Since(start), code: cmd.ProcessState.ExitCode()}
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	r.peakRSS = peakRSS(t, rss)
	r.stdout = outBuf.String()
	r.keys, r.stderr = outputLines(outBuf.String(), errBuf.String())
	return r
}

// outputLines are the metric keys (or --list lines) of stdout, less the
// health lines, and the lines of stderr.
func outputLines(stdout, stderr string) (keys, errLines []string) {
	for _, l := range strings.Split(strings.TrimSpace(stdout), "\n") {
		if l != "" && !strings.HasPrefix(l, "gostats_scrape.") {
			keys = append(keys, strings.Split(l, "\t")[0])
		}
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !helperLogLine.MatchString(l) {
			errLines = append(errLines, l)
		}
	}
	return keys, errLines
}

// runIn runs the plugin in this process against the Docker daemon at host
// (see fleetDocker), with a state file of the test's own, on the clock.
func runIn(t *testing.T, host string, args ...string) pluginRun {
	t.Helper()
	return runInAt(t, time.Now, host, args...)
}

// runInAt is runIn on the clock now: a test clock (testClock) has rates
// between runs without waiting for them.
func runInAt(t *testing.T, now func() time.Time, host string, args ...string) pluginRun {
	t.Helper()
	args = append([]string{"--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state")}, args...)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	r := pluginRun{code: run(t.Context(), defaultParts(now), args, "test", &stdout, &stderr)}
	r.wall = time.Since(start)
	r.stdout = stdout.String()
	r.keys, r.stderr = outputLines(stdout.String(), stderr.String())
	return r
}

// fleetDocker is a Docker stand-in listing one container (of the real
// capture) publishing each of ports.
func fleetDocker(t *testing.T, ports ...uint16) string {
	t.Helper()
	body, _ := fleetContainers(t, ports)
	return (&standin.Docker{Containers: body}).Start(t, "unix")
}

func TestRunDaemonAnswersBadly(t *testing.T) {
	tests := []struct {
		name   string
		daemon *standin.Docker
		want   string
	}{
		{"500 as dockerd sends it", &standin.Docker{FaultStatus: http.StatusInternalServerError, FaultBody: readTestdata(t, "docker_500.json")},
			"cannot list containers at %s: Error response from daemon: invalid character 'b' looking for beginning of object key string"},
		{"garbage", &standin.Docker{Containers: []byte("\x00\x01garbage")},
			"cannot list containers at %s: invalid character '\\x00' looking for beginning of value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := tt.daemon.Start(t, "unix")
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
	ports := fleet(t, 2, func(int) http.Handler { return realHandler })
	gonePort := refusingPort(t)
	ports[1] = uint16(gonePort)
	body, cs := fleetContainers(t, ports)

	host := (&standin.Docker{Containers: body}).Start(t, "unix")
	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	want := fmt.Sprintf("warning: scrape http://127.0.0.1:%d/stats (container ecs-web-3-web-0001 %s): dial tcp 127.0.0.1:%d: connect: connection refused", gonePort, cs[1].ID[:12], gonePort)
	if run.code != 0 || len(run.stderr) != 1 || run.stderr[0] != want {
		t.Errorf("exit %d, stderr %q\nwant %s", run.code, run.stderr, want)
	}
	if len(run.keys) != gaugesPerTask() || !strings.HasPrefix(run.keys[0], fmt.Sprintf("gostats.%d.", cs[0].Ports[0].PublicPort)) {
		t.Errorf("keys of the live task: %v", run.keys)
	}
}

// TestRunFaultsAtScale: 1000 targets of which 100 hang, 100 refuse and 100
// send 64 MiB bodies, at --concurrency 128: the hung ones hold 100 slots
// for the whole run. What holds however busy the machine: the run ends by
// its timeout, every target is accounted for exactly once (its values
// reported, or one warning of a cause its kind may have), a broken target
// is never reported, and the health lines add up. How many of the good
// ones finish in time is the machine's business, not the test's: under
// load some are still waiting for a slot at the deadline. Without the race
// detector, the run's memory stays bounded too.
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
	ports := fleet(t, n, func(i int) http.Handler {
		switch kind(i) {
		case "hang":
			return hang
		case "big":
			return big
		}
		return realHandler
	})
	// Refusing targets: their port was published, nothing listens now.
	for i := range ports {
		if kind(i) == "refuse" {
			ports[i] = uint16(refusingPort(t))
		}
	}
	body, cs := fleetContainers(t, ports)
	kindOf := map[string]string{} // by published port
	for i, c := range cs {
		kindOf[fmt.Sprint(c.Ports[0].PublicPort)] = kind(i)
	}

	timeout := 2 * time.Second
	host := (&standin.Docker{Containers: body}).Start(t, "unix")
	run := runPlugin(t, "--docker-host", host, "--timeout", timeout.String(),
		"--concurrency", "128", "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 {
		t.Fatalf("exit %d", run.code)
	}
	t.Logf("1000 targets, 300 broken: %s, peak RSS %.1f MiB", run.wall.Round(time.Millisecond), float64(run.peakRSS)/(1<<20))
	// The N = 1000 memory target holds even with 100 64 MiB bodies (at most
	// 128 bodies of at most 256 KiB are read at once).
	if run.peakRSS > 64<<20 && !raceEnabled {
		t.Errorf("peak RSS %d MiB", run.peakRSS>>20)
	}

	reported := map[string]int{} // keys by port
	for _, k := range run.keys {
		reported[strings.Split(k, ".")[1]]++
	}
	for p, keys := range reported {
		if kindOf[p] != "good" || keys != gaugesPerTask() {
			t.Errorf("port %s (%s): %d keys reported, want none of a broken target, %d of a good one", p, kindOf[p], keys, gaugesPerTask())
		}
	}
	// The causes each kind of target may be warned of: its own, and those of
	// the deadline (still in flight, or still waiting for a slot).
	causes := map[string][]string{
		"hang":   {"no answer within 2s"},
		"refuse": {"dial tcp ", "no answer within 2s"},
		"big":    {"response body exceeds 262144 bytes", "no answer within 2s"},
		"good":   {"no answer within 2s"},
	}
	warned := map[string]int{}
	byCause := map[string]int{}
	for _, l := range run.stderr {
		m := scrapeWarning.FindStringSubmatch(l)
		if m == nil {
			t.Errorf("not a scrape warning: %q", l)
			continue
		}
		port, cause := m[1], m[2]
		warned[port]++
		k := kindOf[port]
		ok := strings.HasPrefix(cause, "not scraped: ")
		for _, c := range causes[k] {
			ok = ok || strings.HasPrefix(cause, c)
		}
		if k == "refuse" && strings.HasPrefix(cause, "dial tcp ") {
			ok = strings.HasSuffix(cause, ": connect: connection refused")
		}
		if !ok {
			t.Errorf("port %s (%s): warning %q, want one of %q or not scraped", port, k, cause, causes[k])
		}
		byCause[k+": "+strings.SplitN(cause, ":", 2)[0]]++
	}
	t.Logf("warnings by kind and cause: %v", byCause)
	for p, k := range kindOf {
		if got := reported[p] / gaugesPerTask(); got+warned[p] != 1 || k != "good" && warned[p] != 1 {
			t.Errorf("port %s (%s): reported %d times, warned of %d times; want once in all, a broken one warned of", p, k, got, warned[p])
		}
	}

	h := healthValues(t, run.stdout)
	if h["targets.found"] != n || h["targets.ok"] != float64(len(reported)) || h["targets.failed"] != float64(len(run.stderr)) ||
		h["targets.found"] != h["targets.ok"]+h["targets.failed"] || h["targets.ok"] < 1 {
		t.Errorf("health %v: want %d found, the %d reported ok (at least one), the %d warned of failed", h, n, len(reported), len(run.stderr))
	}
	// The bound a hung target may hold the run: its timeout, and what a run
	// takes past it on an idle machine (starting, writing; about 0.5 s),
	// with 5 times that as headroom for a busy one.
	if bound := timeout + 5*500*time.Millisecond; run.wall > bound {
		t.Errorf("run took %s with --timeout %s, want at most %s", run.wall, timeout, bound)
	}
}

// scrapeWarning is a failed scrape's warning: the target's port, and the
// cause.
var scrapeWarning = regexp.MustCompile(`^warning: scrape http://127\.0\.0\.1:(\d+)/stats \(container [^ ]+ [0-9a-f]+\): (.+)$`)

// TestRunNegotiatesWhenVersionRefused: a daemon that refuses API 1.41 (as
// Docker 29 does, with the message of moby's version middleware) is asked
// again at the version it announces; counted requests show the one extra
// round trip is paid only then.
func TestRunNegotiatesWhenVersionRefused(t *testing.T) {
	body, _ := fleetContainers(t, fleet(t, 1, func(int) http.Handler { return realHandler }))
	daemon := &standin.Docker{Containers: body, APIVersion: "1.51", MinAPIVersion: "1.44"}
	host := daemon.Start(t, "unix")

	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != gaugesPerTask() {
		t.Errorf("exit %d, %d keys, stderr %q", run.code, len(run.keys), run.stderr)
	}
	want := "GET /v1.41/containers/json,HEAD /_ping,GET /v1.51/containers/json"
	if got := strings.Join(daemon.Requests(), ","); got != want {
		t.Errorf("requests %s\nwant %s", got, want)
	}
}

// TestRunOneDaemonRequest: against a daemon that serves API 1.41, a run
// makes exactly one request to it.
func TestRunOneDaemonRequest(t *testing.T) {
	ports := fleet(t, 1, func(int) http.Handler { return realHandler })
	body, _ := fleetContainers(t, ports)
	// container-ip: the recorded container's bridge address made loopback, so
	// its private port can be the fleet server's.
	loopback := bytes.ReplaceAll(body, []byte(`"IPAddress":"172.17.0.2"`), []byte(`"IPAddress":"127.0.0.1"`))
	if bytes.Equal(loopback, body) {
		t.Fatal("the recorded container's address is not 172.17.0.2")
	}
	tests := []struct {
		name string
		body []byte
		args []string
	}{
		{"host-port", body, nil},
		{"container-ip", loopback, []string{"--address", "container-ip", "--container-port", fmt.Sprint(ports[0]), "--key", "{name}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			daemon := &standin.Docker{Containers: tt.body}
			host := daemon.Start(t, "unix")
			run := runPlugin(t, append([]string{"--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state")}, tt.args...)...)
			if run.code != 0 || len(run.keys) != gaugesPerTask() || strings.Join(daemon.Requests(), ",") != "GET /v1.41/containers/json" {
				t.Errorf("exit %d, %d keys, stderr %q, daemon requests %q; want one request", run.code, len(run.keys), run.stderr, daemon.Requests())
			}
		})
	}
}

// TestRunDockerHostTCP: a daemon on tcp:// (dockerd -H tcp://127.0.0.1:2375).
func TestRunDockerHostTCP(t *testing.T) {
	body, _ := fleetContainers(t, fleet(t, 1, func(int) http.Handler { return realHandler }))
	host := (&standin.Docker{Containers: body}).Start(t, "tcp")
	run := runPlugin(t, "--docker-host", host, "--tempfile", filepath.Join(t.TempDir(), "state"))
	if run.code != 0 || len(run.keys) != gaugesPerTask() || len(run.stderr) != 0 {
		t.Errorf("exit %d, %d keys, stderr %q", run.code, len(run.keys), run.stderr)
	}
}
