package mpecsgostats

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGraphDefinitionGolden(t *testing.T) {
	got, err := json.MarshalIndent(graphDefinitions("gostats", nil), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("..", "testdata", "graphdef.golden.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readTestdata(t, "graphdef.golden.json")
	if !bytes.Equal(got, want) {
		t.Errorf("graph definitions differ from %s (go test ./lib -update rewrites it):\n%s", golden, got)
	}
}

func TestGraphLabels(t *testing.T) {
	tests := []struct{ prefix, memoryLabel string }{
		{"gostats", "Gostats Memory"},
		{"gostats.prod", "Gostats Prod Memory"},
		{"app.go-stats_2", "App Go Stats 2 Memory"},
	}
	for _, tt := range tests {
		graphs := graphDefinitions(tt.prefix, nil)
		if got := graphs[tt.prefix+".#.memory"].Label; got != tt.memoryLabel {
			t.Errorf("prefix %s: memory graph label %q, want %q", tt.prefix, got, tt.memoryLabel)
		}
		for key, g := range graphs {
			switch g.Unit { // the units mackerel-agent accepts
			case "float", "integer", "percentage", "seconds", "milliseconds", "bytes", "bytes/sec", "bits/sec", "iops":
			default:
				t.Errorf("graph %s unit %q", key, g.Unit)
			}
		}
	}
}

func TestParseOptions(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	tests := []struct {
		name     string
		args     []string
		env      string
		code     int
		done     bool
		stdout   string
		stderr   string
		validate func(t *testing.T, o options)
	}{
		{name: "defaults", validate: func(t *testing.T, o options) {
			if o.DockerHost != "unix:///var/run/docker.sock" || o.Path != "/stats" || o.Scheme != "http" ||
				o.Timeout != 5*time.Second || o.Concurrency != 128 || o.Prefix != "gostats" || o.ContainerPort != 0 {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "DOCKER_HOST", env: "tcp://127.0.0.1:2375", validate: func(t *testing.T, o options) {
			if o.DockerHost != "tcp://127.0.0.1:2375" {
				t.Errorf("DockerHost = %s", o.DockerHost)
			}
		}},
		{name: "repeatable filters", args: []string{"-l", "a=b", "--label", "c", "-n", "web", "--name", "api", "-P", "8080", "-t", "2s"},
			validate: func(t *testing.T, o options) {
				if strings.Join(o.Labels, ",") != "a=b,c" || strings.Join(o.Names, ",") != "web,api" || o.ContainerPort != 8080 || o.Timeout != 2*time.Second {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "help", args: []string{"--help"}, code: 0, done: true, stdout: "Usage:\n  mackerel-plugin-ecs-gostats [OPTIONS]\n"},
		{name: "unknown flag", args: []string{"--port", "8080"}, code: 2, done: true, stderr: "mackerel-plugin-ecs-gostats: unknown flag `port'\n"},
		{name: "bad scheme", args: []string{"--scheme", "ftp"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: Invalid value `ftp' for option `--scheme'. Allowed values are: http or https\n"},
		{name: "bad timeout", args: []string{"--timeout", "5"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: invalid argument for flag `-t, --timeout' (expected time.Duration): time: missing unit in duration \"5\"\n"},
		{name: "bad prefix", args: []string{"--metric-key-prefix", "gostats.#"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --metric-key-prefix \"gostats.#\": use letters, digits, '-', '_' and '.' only\n"},
		{name: "zero concurrency", args: []string{"-c", "0"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --concurrency 0: must be at least 1\n"},
		{name: "relative path", args: []string{"--path", "stats"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --path \"stats\": must start with /\n"},
		{name: "stray argument", args: []string{"8080"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: unexpected argument \"8080\"\n"},
		{name: "--network without container-ip", args: []string{"--network", "bridge"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --network \"bridge\": only with --address container-ip\n"},
		{name: "bad address", args: []string{"--address", "task-ip"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: Invalid value `task-ip' for option `--address'. Allowed values are: host-port or container-ip\n"},
		{name: "key with a dot", args: []string{"--key", "{family}.{slot}"}, code: 2, done: true,
			stderr: "mackerel-plugin-ecs-gostats: --key \"{family}.{slot}\": '.' would split the metric key; use '-' or '_'\n"},
		{name: "stable keys", args: []string{"--key", "{family}-{slot}", "--graphs", "memory,gc", "--address", "container-ip", "--network", "ecs"},
			validate: func(t *testing.T, o options) {
				if o.keyTemplate != "{family}-{slot}" || len(o.graphs) != 2 || !o.graphs["memory"] || !o.graphs["gc"] ||
					o.Address != "container-ip" || o.Network != "ecs" {
					t.Errorf("parsed: %+v", o)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.env)
			var stdout, stderr bytes.Buffer
			o, code, done := parseOptions(tt.args, &stdout, &stderr)
			if code != tt.code || done != tt.done {
				t.Errorf("code, done = %d, %v; want %d, %v (stderr %q)", code, done, tt.code, tt.done, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tt.stdout) {
				t.Errorf("stdout = %q, want prefix %q", stdout.String(), tt.stdout)
			}
			if stderr.String() != tt.stderr {
				t.Errorf("stderr = %q\nwant %q", stderr.String(), tt.stderr)
			}
			if tt.validate != nil {
				tt.validate(t, o)
			}
		})
	}
}

func TestRunVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run(t.Context(), []string{"--version"}, "v1.2.3", &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if stdout.String() != "mackerel-plugin-ecs-gostats v1.2.3\n" {
		t.Errorf("stdout = %q", stdout.String())
	}
}

func TestPrintList(t *testing.T) {
	results := []result{
		{target: Target{ContainerID: "d6f4005db94f0123", ContainerName: "ecs-web-3-web-e8c6", Family: "web", Host: "127.0.0.1", Port: 32769, HostPort: 32769},
			key: "32769", latency: 2340 * time.Microsecond, values: allValues()},
		{target: Target{ContainerID: "d01217798a9a0123", ContainerName: "ecs-api-7-api-9a8b", Host: "127.0.0.1", Port: 32770, HostPort: 32770},
			key: "32770", cause: errors.New("unexpected status 500 Internal Server Error")},
	}
	var out bytes.Buffer
	printList(&out, &report{results: results, passed: []passedOver{{"ecs-mackerel-container-agent-1", "a0b1c2d3e4f5a6b7", "lists no TCP port (no portMappings)"}}})
	want := "ecs-web-3-web-e8c6              d6f4005db94f  web  127.0.0.1:32769  32769  ok 2.3ms\n" +
		"ecs-api-7-api-9a8b              d01217798a9a  -    127.0.0.1:32770  32770  error: unexpected status 500 Internal Server Error\n" +
		"ecs-mackerel-container-agent-1  a0b1c2d3e4f5  -    -                -      passed over: lists no TCP port (no portMappings)\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func allValues() map[string]float64 {
	v := map[string]float64{}
	for _, m := range metricDefs {
		v[m.key()] = 1
	}
	return v
}
