package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// pluginCommand is where `mkr plugin install` puts the plugin by default (<prefix>/bin, prefix
// /opt/mackerel-agent/plugins); the examples run it from there.
const pluginCommand = "/opt/mackerel-agent/plugins/bin/mackerel-plugin-ecs-gostats"

// exampleRole is the role placeholder shared by the cloud-init and dashboard examples.
const exampleRole = "myservice:ecs"

type agentPluginConf struct {
	Command        []string          `toml:"command"`
	TimeoutSeconds int64             `toml:"timeout_seconds"`
	Env            map[string]string `toml:"env"` // what mackerel-agent adds to the plugin's environment
}

// loadAgentConf decodes a mackerel-agent.conf snippet and fails on any key it does not know.
func loadAgentConf(t *testing.T, path string) map[string]agentPluginConf {
	t.Helper()
	var conf struct {
		Plugin struct {
			Metrics map[string]agentPluginConf `toml:"metrics"`
		} `toml:"plugin"`
	}
	md, err := toml.DecodeFile(path, &conf)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if u := md.Undecoded(); len(u) > 0 {
		t.Fatalf("%s: unexpected keys %v", path, u)
	}
	return conf.Plugin.Metrics
}

func TestAgentConfExamples(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string // everything after the command path
	}{
		{"examples/mackerel-agent.conf", nil},
		{"examples/mackerel-agent.label.conf", []string{
			"--label", "com.amazonaws.ecs.task-definition-family=web",
			"--container-port", "8080",
			"--timeout", "10s",
		}},
		{"examples/mackerel-agent.stable.conf", []string{
			"--key", "{family}-{slot}",
			"--container-port", "8080",
			"--graphs", "runtime,memory,heap,gc",
		}},
		{"examples/mackerel-agent.container.conf", []string{
			"--address", "container-ip",
			"--key", "{family}-{slot}",
			"--container-port", "8080",
		}},
		{"examples/mackerel-agent.otlp.conf", []string{
			"--output", "mackerel,otlp",
			"--otlp-endpoint", "otlp.mackerelio.com:4317",
			"--timeout", "15s",
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			plugins := loadAgentConf(t, tc.file)
			if len(plugins) != 1 {
				t.Fatalf("want exactly one [plugin.metrics.*] block, got %d", len(plugins))
			}
			p, ok := plugins["ecs-gostats"]
			if !ok {
				t.Fatalf("no [plugin.metrics.ecs-gostats] block in %v", plugins)
			}
			if len(p.Command) == 0 || p.Command[0] != pluginCommand {
				t.Fatalf("command = %q, want it to start with %q", p.Command, pluginCommand)
			}
			if got := p.Command[1:]; !slices.Equal(got, tc.args) {
				t.Errorf("arguments = %q, want %q", got, tc.args)
			}
			// The plugin accepts them: options are parsed before --version is answered.
			if out, err := exec.Command(pluginBin, append(p.Command[1:], "--version")...).CombinedOutput(); err != nil {
				t.Errorf("the plugin refuses the example's arguments: %v: %s", err, out)
			}
			assertTimeoutsFit(t, p.Command, p.TimeoutSeconds)
		})
	}
}

// assertTimeoutsFit checks that the plugin's --timeout in command (default 5s) stays well below the
// agent's plugin timeout in seconds (mackerel-agent's timeout_seconds, mackerel-container-agent's
// timeoutSeconds; default 30 in both): at most half of it.
func assertTimeoutsFit(t *testing.T, command []string, agentSeconds int64) {
	t.Helper()
	pluginTimeout := 5 * time.Second
	if i := slices.Index(command, "--timeout"); i > 0 && i+1 < len(command) {
		d, err := time.ParseDuration(command[i+1])
		if err != nil {
			t.Fatal(err)
		}
		pluginTimeout = d
	}
	agentTimeout := 30 * time.Second
	if agentSeconds > 0 {
		agentTimeout = time.Duration(agentSeconds) * time.Second
	}
	if 2*pluginTimeout > agentTimeout {
		t.Errorf("plugin --timeout %s is not well below the agent's plugin timeout %s", pluginTimeout, agentTimeout)
	}
}

type cloudConfig struct {
	WriteFiles []struct {
		Path        string `yaml:"path"`
		Permissions string `yaml:"permissions"`
		Content     string `yaml:"content"`
	} `yaml:"write_files"`
	Runcmd []string `yaml:"runcmd"`
}

func TestCloudInitExample(t *testing.T) {
	b, err := os.ReadFile("examples/cloud-init.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte("#cloud-config\n")) {
		t.Fatal("user data must start with a #cloud-config line")
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var cc cloudConfig
	if err := dec.Decode(&cc); err != nil {
		t.Fatalf("not the cloud-config this test expects (write_files and runcmd of plain strings): %v", err)
	}

	// The staged plugin block is the conf example, byte for byte.
	const staged = "/etc/mackerel-agent/ecs-gostats.conf.in"
	conf, err := os.ReadFile("examples/mackerel-agent.conf")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, f := range cc.WriteFiles {
		if f.Path == staged {
			found = true
			if f.Content != string(conf) {
				t.Errorf("content of %s differs from examples/mackerel-agent.conf:\n%s", staged, f.Content)
			}
		}
	}
	if !found {
		t.Fatalf("no write_files entry for %s", staged)
	}

	// runcmd: install the plugin pinned to the current release, add the role and the block, turn on
	// auto retirement (a terminated instance retires its host), and stop and start the agent. The unit
	// retires the host on every stop once AUTO_RETIREMENT is set, so it is set while the agent is
	// stopped, and the agent is never restarted.
	version, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"mkr plugin install --upgrade ecs-gostats/mackerel-plugin-ecs-gostats@v" + strings.TrimSpace(string(version)),
		`sed -i '1i roles = [ "` + exampleRole + `" ]' /etc/mackerel-agent/mackerel-agent.conf`,
		"cat " + staged + " >> /etc/mackerel-agent/mackerel-agent.conf",
		"systemctl stop mackerel-agent",
		"echo AUTO_RETIREMENT=1 >> /etc/sysconfig/mackerel-agent",
		"systemctl start mackerel-agent",
	}
	last := -1
	for _, w := range want {
		i := slices.Index(cc.Runcmd, w)
		if i < 0 {
			t.Fatalf("runcmd lacks %q:\n%s", w, strings.Join(cc.Runcmd, "\n"))
		}
		if i < last {
			t.Errorf("runcmd runs %q too early", w)
		}
		last = i
	}
	if last != len(cc.Runcmd)-1 {
		t.Errorf("starting mackerel-agent must be the last step")
	}
	for _, c := range cc.Runcmd {
		if strings.Contains(c, "restart") {
			t.Errorf("runcmd restarts the agent, which retires the host under AUTO_RETIREMENT: %q", c)
		}
	}
	if !strings.Contains(cc.Runcmd[0], "setup-all-yum-v2.sh") {
		t.Errorf("the first step must install mackerel-agent, got %q", cc.Runcmd[0])
	}
}

type dashboard struct {
	Title   string `json:"title"`
	URLPath string `json:"urlPath"`
	Memo    string `json:"memo"`
	Widgets []struct {
		Type     string `json:"type"`
		Title    string `json:"title"`
		Markdown string `json:"markdown"`
		Graph    *struct {
			Type       string `json:"type"`
			Expression string `json:"expression"`
		} `json:"graph"`
		Range *struct {
			Type   string `json:"type"`
			Period int64  `json:"period"`
			Offset int64  `json:"offset"`
		} `json:"range"`
		Layout struct {
			X      int64 `json:"x"`
			Y      int64 `json:"y"`
			Width  int64 `json:"width"`
			Height int64 `json:"height"`
		} `json:"layout"`
	} `json:"widgets"`
}

// checkDashboardSent checks that the dashboard a stand-in API received
// (write, as decoded) is the example at path: its title, urlPath and every
// widget intact.
func checkDashboardSent(t *testing.T, write map[string]any, path string) {
	t.Helper()
	var sent, file dashboard
	b, err := json.Marshal(write)
	if err == nil {
		err = json.Unmarshal(b, &sent)
	}
	if err != nil {
		t.Fatalf("dashboard sent %v: %v", write, err)
	}
	b, err = os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(b, &file)
	}
	if err != nil {
		t.Fatal(err)
	}
	if sent.Title != file.Title || sent.URLPath != file.URLPath || len(sent.Widgets) != len(file.Widgets) {
		t.Fatalf("sent %+v, want %s", sent, path)
	}
	for i, w := range file.Widgets {
		s := sent.Widgets[i]
		if s.Type != w.Type || s.Title != w.Title || s.Layout != w.Layout || s.Markdown != w.Markdown ||
			(w.Graph != nil && (s.Graph == nil || *s.Graph != *w.Graph)) {
			t.Errorf("widget %d sent as %+v, want %+v", i, s, w)
		}
	}
}

var (
	dashboardURLPathRe = regexp.MustCompile(`^([A-Za-z0-9_][-A-Za-z0-9_]*)(/[A-Za-z0-9_][-A-Za-z0-9_]*)*$`)
	quotedRe           = regexp.MustCompile(`'([^']*)'`)
	roleCallRe         = regexp.MustCompile(`role\('([^']*)', '([^']*)'\)`)
	customMetricRe     = regexp.MustCompile(`^custom\.gostats\.\*\.([a-z_]+\.[a-z_]+)$`)
)

// checkDashboard reads the dashboard example at path and checks what every
// one must be: a title, a valid urlPath, widgets on the 24-column grid
// without overlaps, each a markdown or a titled expression graph whose
// role(...) calls name the placeholder role, relative ranges. It returns
// the dashboard and the expression of each graph widget, by index.
func checkDashboard(t *testing.T, path string) (dashboard, map[int]string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.Title == "" || len(d.Widgets) == 0 {
		t.Fatal("title and widgets are required")
	}
	if !dashboardURLPathRe.MatchString(d.URLPath) {
		t.Errorf("urlPath %q is not a valid dashboard path", d.URLPath)
	}
	exprs := map[int]string{}
	for i, w := range d.Widgets {
		l := w.Layout
		if l.X < 0 || l.Y < 0 || l.Width <= 0 || l.Height <= 0 || l.X+l.Width > 24 {
			t.Errorf("widget %d %q: layout %+v outside the 24-column grid", i, w.Title, l)
		}
		for j, o := range d.Widgets[:i] {
			ol := o.Layout
			if l.X < ol.X+ol.Width && ol.X < l.X+l.Width && l.Y < ol.Y+ol.Height && ol.Y < l.Y+l.Height {
				t.Errorf("widgets %d and %d overlap", j, i)
			}
		}
		switch w.Type {
		case "markdown":
			if w.Markdown == "" {
				t.Errorf("widget %d: empty markdown", i)
			}
			continue
		case "graph":
		default:
			t.Errorf("widget %d: unexpected type %q", i, w.Type)
			continue
		}
		if w.Title == "" || w.Graph == nil || w.Graph.Type != "expression" {
			t.Fatalf("widget %d: want a titled graph of type expression", i)
		}
		expr := w.Graph.Expression
		if strings.Count(expr, "(") != strings.Count(expr, ")") {
			t.Errorf("widget %d: unbalanced parentheses in %s", i, expr)
		}
		calls := roleCallRe.FindAllStringSubmatch(expr, -1)
		if len(calls) == 0 {
			t.Errorf("widget %d: no role(...) in %s", i, expr)
		}
		for _, c := range calls {
			if c[1] != exampleRole {
				t.Errorf("widget %d: role %q, want the placeholder %q", i, c[1], exampleRole)
			}
		}
		if w.Range != nil && (w.Range.Type != "relative" || w.Range.Period <= 0) {
			t.Errorf("widget %d: range %+v", i, *w.Range)
		}
		exprs[i] = expr
	}
	return d, exprs
}

func TestDashboardExample(t *testing.T) {
	_, exprs := checkDashboard(t, "examples/dashboard.json")
	used := map[string]bool{} // graph names (memory, heap, ...) and graph.metric names referenced
	for i, expr := range exprs {
		// Every quoted metric name must be one the plugin emits; the other quoted strings are
		// role names and aliases.
		for _, q := range quotedRe.FindAllStringSubmatch(expr, -1) {
			if !strings.HasPrefix(q[1], "custom.") {
				continue
			}
			m := customMetricRe.FindStringSubmatch(q[1])
			if m == nil || !slices.Contains(gaugeMetrics, m[1]) && !slices.Contains(diffMetrics, m[1]) {
				t.Errorf("widget %d: %q is not a metric the plugin emits", i, q[1])
				continue
			}
			used[m[1]] = true
			used[strings.SplitN(m[1], ".", 2)[0]] = true
		}
	}
	for _, want := range []string{"memory", "heap", "runtime.goroutine_num", "gc"} {
		if !used[want] {
			t.Errorf("no graph of %s", want)
		}
	}
}

func TestTaskDefinitionExample(t *testing.T) {
	b, err := os.ReadFile("examples/ecs-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	var td struct {
		Family               string `json:"family"`
		NetworkMode          string `json:"networkMode"`
		ContainerDefinitions []struct {
			Name         string `json:"name"`
			PortMappings []struct {
				ContainerPort *int   `json:"containerPort"`
				HostPort      *int   `json:"hostPort"`
				Protocol      string `json:"protocol"`
			} `json:"portMappings"`
		} `json:"containerDefinitions"`
	}
	if err := json.Unmarshal(b, &td); err != nil {
		t.Fatal(err)
	}
	if td.Family == "" || td.NetworkMode != "bridge" || len(td.ContainerDefinitions) != 1 {
		t.Fatalf("want a family, bridge networking and one container: %+v", td)
	}
	pm := td.ContainerDefinitions[0].PortMappings
	if len(pm) != 1 || pm[0].ContainerPort == nil || *pm[0].ContainerPort != 8080 ||
		pm[0].HostPort == nil || *pm[0].HostPort != 0 || pm[0].Protocol != "tcp" {
		t.Fatalf("want one tcp mapping containerPort 8080 -> hostPort 0 (dynamic), got %s", b)
	}
	// The label example filters on this family.
	plugins := loadAgentConf(t, "examples/mackerel-agent.label.conf")
	if !slices.Contains(plugins["ecs-gostats"].Command, "com.amazonaws.ecs.task-definition-family="+td.Family) {
		t.Errorf("examples/mackerel-agent.label.conf does not filter on family %q", td.Family)
	}
}

// TestAgentContainerExamples: the agent image gets the plugin and the container-ip block, and the daemon
// task definition mounts the Docker socket where the plugin looks for it.
func TestAgentContainerExamples(t *testing.T) {
	df, err := os.ReadFile("examples/Dockerfile.mackerel-agent")
	if err != nil {
		t.Fatal(err)
	}
	version, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"ARG PLUGIN_VERSION=" + strings.TrimSpace(string(version)) + "\n",
		"/releases/download/v${PLUGIN_VERSION}/mackerel-plugin-ecs-gostats_linux_${TARGETARCH}.zip",
		"COPY --from=plugin /plugin/mackerel-plugin-ecs-gostats " + pluginCommand + "\n",
		"COPY mackerel-agent.container.conf /etc/mackerel-agent/conf.d/ecs-gostats.conf\n",
	} {
		if !strings.Contains(string(df), want) {
			t.Errorf("examples/Dockerfile.mackerel-agent lacks %q", want)
		}
	}

	b, err := os.ReadFile("examples/ecs-mackerel-agent-daemon.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var td struct {
		Family                  string   `json:"family"`
		NetworkMode             string   `json:"networkMode"`
		RequiresCompatibilities []string `json:"requiresCompatibilities"`
		ContainerDefinitions    []struct {
			Name        string `json:"name"`
			Image       string `json:"image"`
			Memory      int    `json:"memory"`
			Essential   bool   `json:"essential"`
			Environment []struct {
				Name  string `json:"name"`
				Value string `json:"value"`
			} `json:"environment"`
			MountPoints []struct {
				SourceVolume  string `json:"sourceVolume"`
				ContainerPath string `json:"containerPath"`
				ReadOnly      bool   `json:"readOnly"`
			} `json:"mountPoints"`
		} `json:"containerDefinitions"`
		Volumes []struct {
			Name string `json:"name"`
			Host struct {
				SourcePath string `json:"sourcePath"`
			} `json:"host"`
		} `json:"volumes"`
	}
	if err := dec.Decode(&td); err != nil {
		t.Fatal(err)
	}
	// bridge: the agent's container is on the network the bridge-mode tasks are on.
	if td.NetworkMode != "bridge" || len(td.ContainerDefinitions) != 1 {
		t.Fatalf("want one container in bridge networking: %+v", td)
	}
	sources := map[string]string{}
	for _, v := range td.Volumes {
		sources[v.Name] = v.Host.SourcePath
	}
	var socket bool
	for _, m := range td.ContainerDefinitions[0].MountPoints {
		if m.ContainerPath == "/var/run/docker.sock" && sources[m.SourceVolume] == "/var/run/docker.sock" {
			socket = true
		}
	}
	if !socket {
		t.Error("the Docker socket is not mounted at /var/run/docker.sock, the plugin's default --docker-host")
	}
}
