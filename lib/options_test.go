package mpecsgostats

import (
	"bytes"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mackerelio/golib/pluginutil"
)

// TestParseOptions: every option check, one row a case; a row with stderr
// is a usage error (exit 2) with exactly that line.
func TestParseOptions(t *testing.T) {
	t.Setenv(envTaskMetadata, "http://169.254.170.2/v4/abc")
	type parsed struct{ source, key, format, path string } // path: "" when not given (the format's default, or probed)
	tests := []struct {
		name       string
		args       []string
		dockerHost string // $DOCKER_HOST
		apiKey     string // $MACKEREL_APIKEY
		want       *parsed
		stdout     string // prefix, for --help
		stderr     string
		validate   func(t *testing.T, o options)
		wantDone   bool
	}{
		{name: "defaults", want: &parsed{"docker", "{port}", "gostats", ""}, validate: func(t *testing.T, o options) {
			if o.DockerHost != "unix:///var/run/docker.sock" || o.Scheme != "http" || o.Timeout != 5*time.Second ||
				o.Concurrency != 128 || o.Prefix != "gostats" || o.ContainerPort != 0 || o.graphs != nil {
				t.Errorf("defaults: %+v", o)
			}
		}},
		{name: "DOCKER_HOST", dockerHost: "tcp://127.0.0.1:2375", validate: func(t *testing.T, o options) {
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
		{name: "stable keys", args: []string{"--key", "{family}-{slot}", "--graphs", "memory,gc", "--address", "container-ip", "--network", "ecs"},
			want: &parsed{"docker", "{family}-{slot}", "gostats", ""},
			validate: func(t *testing.T, o options) {
				if len(o.graphs) != 2 || !o.graphs["memory"] || !o.graphs["gc"] || o.Address != "container-ip" || o.Network != "ecs" {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "help", args: []string{"--help"}, wantDone: true, stdout: "Usage:\n  mackerel-plugin-ecs-gostats [OPTIONS]\n"},

		// --source
		{name: "task metadata: the key is the container", args: []string{"--source", "task-metadata"}, want: &parsed{"task-metadata", "{container}", "gostats", ""}},
		{name: "task metadata with a key", args: []string{"--source", "task-metadata", "--key", "{family}-{slot}"}, want: &parsed{"task-metadata", "{family}-{slot}", "gostats", ""}},
		{name: "an empty key", args: []string{"--source", "task-metadata", "--key", ""},
			stderr: `--key "": no placeholder, so every task would get the same key; use e.g. '{family}-{slot}'`},
		{name: "--docker-host with task metadata", args: []string{"--source", "task-metadata", "--docker-host", "unix:///x.sock"}, stderr: "--docker-host: only with --source docker"},
		{name: "--address with task metadata", args: []string{"--source", "task-metadata", "--address", "container-ip"}, stderr: "--address: only with --source docker"},
		{name: "--host with task metadata", args: []string{"--source", "task-metadata", "--host", "127.0.0.2"}, stderr: "--host: only with --source docker"},
		{name: "--ecs-agent-url with task metadata", args: []string{"--source", "task-metadata", "--ecs-agent-url", "http://127.0.0.1:51678"}, stderr: "--ecs-agent-url: only with --source docker"},
		{name: "--task-metadata-url with docker", args: []string{"--task-metadata-url", "http://127.0.0.1:1/v4/x"}, stderr: "--task-metadata-url: only with --source task-metadata"},
		{name: "--name not a regular expression", args: []string{"--source", "task-metadata", "--name", "web["},
			stderr: "--name \"web[\": not a regular expression: error parsing regexp: missing closing ]: `[`"},
		{name: "unknown source", args: []string{"--source", "fargate"}, stderr: "Invalid value `fargate' for option `--source'. Allowed values are: docker or task-metadata"},

		// --format and --path
		{name: "gostats", args: []string{"--format", "gostats"}, want: &parsed{"docker", "{port}", "gostats", ""}},
		{name: "expvar", args: []string{"--format", "expvar"}, want: &parsed{"docker", "{port}", "expvar", ""}},
		{name: "expvar elsewhere", args: []string{"--format=expvar", "--path", "/internal/vars"}, want: &parsed{"docker", "{port}", "expvar", "/internal/vars"}},
		{name: "gostats elsewhere", args: []string{"-p", "/debug/vars"}, want: &parsed{"docker", "{port}", "gostats", "/debug/vars"}},
		{name: "empty path", args: []string{"--format", "expvar", "--path", ""}, stderr: "--path \"\": must start with /"},
		{name: "relative path", args: []string{"--path", "stats"}, stderr: "--path \"stats\": must start with /"},
		{name: "prometheus", args: []string{"--format", "prometheus"}, want: &parsed{"docker", "{port}", "prometheus", ""}},
		{name: "auto", args: []string{"--format", "auto", "--opt-in"}, validate: func(t *testing.T, o options) {
			if o.format != nil || o.Format != "auto" || !o.OptIn {
				t.Errorf("parsed: %+v", o)
			}
		}},
		{name: "unknown format", args: []string{"--format", "json"}, stderr: "Invalid value `json' for option `--format'. Allowed values are: gostats, prometheus, expvar or auto"},

		// the rest
		{name: "unknown flag", args: []string{"--port", "8080"}, stderr: "unknown flag `port'"},
		{name: "bad scheme", args: []string{"--scheme", "ftp"}, stderr: "Invalid value `ftp' for option `--scheme'. Allowed values are: http or https"},
		{name: "bad timeout", args: []string{"--timeout", "5"}, stderr: "invalid argument for flag `-t, --timeout' (expected time.Duration): time: missing unit in duration \"5\""},
		{name: "bad prefix", args: []string{"--metric-key-prefix", "gostats.#"}, stderr: "--metric-key-prefix \"gostats.#\": use letters, digits, '-', '_' and '.' only"},
		{name: "zero concurrency", args: []string{"-c", "0"}, stderr: "--concurrency 0: must be at least 1"},
		{name: "stray argument", args: []string{"8080"}, stderr: "unexpected argument \"8080\""},
		{name: "--network without container-ip", args: []string{"--network", "bridge"}, stderr: "--network \"bridge\": only with --address container-ip"},
		{name: "bad address", args: []string{"--address", "task-ip"}, stderr: "Invalid value `task-ip' for option `--address'. Allowed values are: host-port or container-ip"},
		{name: "key with a dot", args: []string{"--key", "{family}.{slot}"}, stderr: "--key \"{family}.{slot}\": '.' would split the metric key; use '-' or '_'"},
		// --output and OTLP
		{name: "both outputs", args: []string{"--output", "mackerel,otlp", "--otlp-endpoint", "otlp.mackerelio.com:4317"}, validate: func(t *testing.T, o options) {
			if !slices.Equal(o.outputs, []string{"mackerel", "otlp"}) || o.OTLPInsecure {
				t.Errorf("parsed: %+v", o)
			}
		}},
		{name: "otlp only, plain text to this host with a key", args: []string{"--output", "otlp", "--otlp-endpoint", "127.0.0.1:4317", "--otlp-insecure"}, apiKey: "k3y",
			validate: func(t *testing.T, o options) {
				if !slices.Equal(o.outputs, []string{"otlp"}) || !o.OTLPInsecure || o.apiKey != "k3y" {
					t.Errorf("parsed: %+v", o)
				}
			}},
		{name: "plain text elsewhere without a key", args: []string{"--output", "otlp", "--otlp-endpoint", "collector.internal:4317", "--otlp-insecure"}},
		{name: "otlp without an endpoint", args: []string{"--output", "otlp"}, stderr: "--output otlp: needs --otlp-endpoint HOST:PORT"},
		{name: "an endpoint without otlp", args: []string{"--otlp-endpoint", "127.0.0.1:4317"}, stderr: "--otlp-endpoint: only with otlp in --output (e.g. --output mackerel,otlp)"},
		{name: "an endpoint without a port", args: []string{"--output", "otlp", "--otlp-endpoint", "otlp.mackerelio.com"},
			stderr: `--otlp-endpoint "otlp.mackerelio.com": want HOST:PORT, such as otlp.mackerelio.com:4317`},
		{name: "unknown output", args: []string{"--output", "mackerel,stdout"}, stderr: `--output "mackerel,stdout": unknown output "stdout" (valid: mackerel,otlp)`},
		{name: "plain text elsewhere with a key", args: []string{"--output", "otlp", "--otlp-endpoint", "collector.internal:4317", "--otlp-insecure"}, apiKey: "k3y",
			stderr: "--otlp-insecure: refused while MACKEREL_APIKEY is set and collector.internal is not on this host: the key would cross the network in plain text; use TLS, or unset MACKEREL_APIKEY for a collector that adds the key itself"},
		{name: "unknown graph", args: []string{"--graphs", "memory,threads"},
			stderr: `--graphs "memory,threads": unknown graph "threads" (valid: runtime,memory,operation,heap,gc,objects,allocation)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("DOCKER_HOST", tt.dockerHost)
			t.Setenv("MACKEREL_APIKEY", tt.apiKey)
			t.Setenv("MACKEREL_APIKEY", tt.apiKey)
			var stdout, stderr bytes.Buffer
			p := defaultParts(time.Now)
			if tt.stderr != "" { // a usage error, found by the options or by an output's
				code := run(t.Context(), p, tt.args, "test", &stdout, &stderr)
				if want := pluginName + ": " + tt.stderr + "\n"; code != 2 || stdout.Len() != 0 || stderr.String() != want {
					t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 2 and %q", code, stdout.String(), stderr.String(), want)
				}
				return
			}
			o, code, done := parseOptions(p, tt.args, &stdout, &stderr)
			if code != 0 || done != tt.wantDone || stderr.Len() != 0 || !strings.HasPrefix(stdout.String(), tt.stdout) {
				t.Fatalf("exit %d, done %v, stdout %q, stderr %q", code, done, stdout.String(), stderr.String())
			}
			if _, err := openOutputs(p.outputs, o, "test", &stdout); !done && err != nil {
				t.Fatalf("outputs: %v", err)
			}
			if tt.want != nil {
				got := parsed{o.Source, string(o.keyTemplate), o.format.name(), o.Path}
				if got != *tt.want || o.Key != tt.want.key || o.Format != tt.want.format {
					t.Errorf("parsed %+v (Key %q, Format %q), want %+v", got, o.Key, o.Format, *tt.want)
				}
			}
			if tt.validate != nil {
				tt.validate(t, o)
			}
		})
	}
}

// TestTempfile: one state file per command line in the plugin work dir, so
// two plugin blocks never share one; --tempfile names it.
func TestTempfile(t *testing.T) {
	t.Setenv("MACKEREL_PLUGIN_WORKDIR", t.TempDir())
	dir := pluginutil.PluginWorkDir()
	a := options{}.tempfile([]string{"--label", "a"})
	b := options{}.tempfile([]string{"--label", "b"})
	// the SHA-1 of "--label a" (sha1sum), as go-mackerel-plugin-helper names its state files
	if want := filepath.Join(dir, "mackerel-plugin-ecs-gostats-59a59960dc48827b848226799e405e529c7ceee2"); a != want {
		t.Errorf("tempfile %s, want %s", a, want)
	}
	if a == b {
		t.Errorf("two command lines share %s", a)
	}
	// --list reads the state of the block it is added to
	if l := (options{}).tempfile([]string{"--list", "--label", "a"}); l != a {
		t.Errorf("with --list: tempfile %s, want the block's, %s", l, a)
	}
	if got := (options{Tempfile: "/var/tmp/x"}).tempfile(nil); got != "/var/tmp/x" {
		t.Errorf("--tempfile: %s", got)
	}
}

// TestParseOptionsOTLPEndpoint: --otlp-endpoint is HOST:PORT and nothing
// else; any other form is a usage error (exit 2) of exactly one line naming
// HOST:PORT, with nothing on stdout, before anything is dialled.
func TestParseOptionsOTLPEndpoint(t *testing.T) {
	t.Setenv("MACKEREL_APIKEY", "")
	for _, endpoint := range []string{"localhost:4317", "otlp.mackerelio.com:4317", "[::1]:4317", "127.0.0.1:4317"} {
		t.Run(endpoint, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			p := defaultParts(time.Now)
			o, code, done := parseOptions(p, []string{"--output", "otlp", "--otlp-endpoint", endpoint}, &stdout, &stderr)
			if code != 0 || done || stdout.Len() != 0 || stderr.Len() != 0 || o.OTLPEndpoint != endpoint {
				t.Errorf("exit %d, done %v, stdout %q, stderr %q", code, done, stdout.String(), stderr.String())
			}
			if outs, err := openOutputs(p.outputs, o, "test", &stdout); err != nil || len(outs) != 1 {
				t.Errorf("outputs %v, %v; want the OTLP output", outs, err)
			}
		})
	}
	for _, tt := range []struct{ name, endpoint string }{
		{"http scheme", "http://x:4317"},
		{"https scheme, no port", "https://host"},
		{"https URL of Mackerel", "https://otlp.mackerelio.com:4317"},
		{"grpc scheme", "grpc://otlp.mackerelio.com:4317"},
		{"a path", "host:4317/v1"},
		{"a path after the slash", "otlp.mackerelio.com:4317/"},
		{"empty host", ":4317"},
		{"no port", "otlp.mackerelio.com"},
		{"empty port", "otlp.mackerelio.com:"},
		{"non-numeric port", "otlp.mackerelio.com:grpc"},
		{"port 0", "otlp.mackerelio.com:0"},
		{"port over 65535", "otlp.mackerelio.com:65536"},
		{"negative port", "otlp.mackerelio.com:-4317"},
		{"IPv6 without brackets", "::1:4317"},
		{"brackets without IPv6", "[localhost]:4317"},
		{"brackets around IPv4", "[127.0.0.1]:4317"},
		{"unclosed bracket", "[::1:4317"},
		{"user info", "user@otlp.mackerelio.com:4317"},
		{"a space", "otlp.mackerelio.com :4317"},
		{"a query", "otlp.mackerelio.com:4317?x=1"},
		{"an empty label", "otlp..mackerelio.com:4317"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), defaultParts(time.Now), []string{"--output", "mackerel,otlp", "--otlp-endpoint", tt.endpoint}, "test", &stdout, &stderr)
			want := `mackerel-plugin-ecs-gostats: --otlp-endpoint "` + tt.endpoint + `": want HOST:PORT, such as otlp.mackerelio.com:4317` + "\n"
			if code != 2 || stdout.Len() != 0 || stderr.String() != want {
				t.Errorf("exit %d, stdout %q, stderr %q\nwant exit 2, no stdout and %q", code, stdout.String(), stderr.String(), want)
			}
		})
	}
}
