package main

// Integration test of --source task-metadata as on Fargate, where the plugin
// runs beside the task's containers (as a plugin of mackerel-container-agent,
// a container of the task): real containers sharing one network namespace,
// the built binary in a container of that namespace, and a stand-in for the
// task metadata endpoint. Its containers are started with scripts/ecs-task.sh,
// as every test task.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
	"gopkg.in/yaml.v3"
)

// inTask runs image with entrypoint and args in a container in the network
// namespace of the container netns, with env, and waits for it, as
// `docker run --rm`; the container carries the cluster label, so it is
// removed with the test's other containers if it outlives the test.
func inTask(t *testing.T, image, cluster, netns string, env []string, entrypoint string, args ...string) result {
	t.Helper()
	run := []string{"run", "--rm", "--label", "com.amazonaws.ecs.cluster=" + cluster,
		"--network", "container:" + netns, "--entrypoint", entrypoint}
	for _, e := range env {
		run = append(run, "-e", e)
	}
	r, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost), "docker", append(append(run, image), args...)...)
	if err == nil && r.code >= 125 { // 125 and up: docker's own failures
		err = fmt.Errorf("exit status %d", r.code)
	}
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(run, " "), err, r.stderr)
	}
	return r
}

// containerAgentExample is the configuration of mackerel-container-agent
// that examples/ gives for --output mackerel (the default).
const containerAgentExample = "examples/mackerel-container-agent.yml"

// containerAgentPlugins decodes examples/mackerel-container-agent.yml as
// mackerel-container-agent reads its configuration, failing on any key it
// does not know, and returns its metric plugins.
func containerAgentPlugins(t *testing.T) map[string]containerAgentPlugin {
	t.Helper()
	return containerAgentPluginsOf(t, containerAgentExample)
}

// containerAgentPluginsOf is containerAgentPlugins of the example file.
func containerAgentPluginsOf(t *testing.T, example string) map[string]containerAgentPlugin {
	t.Helper()
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Apibase           string                                     `yaml:"apibase"`
		Apikey            string                                     `yaml:"apikey"`
		Root              string                                     `yaml:"root"`
		Roles             []string                                   `yaml:"roles"`
		IgnoreContainer   string                                     `yaml:"ignoreContainer"`
		ReadinessProbe    map[string]any                             `yaml:"readinessProbe"`
		HostStatusOnStart string                                     `yaml:"hostStatusOnStart"`
		Plugin            map[string]map[string]containerAgentPlugin `yaml:"plugin"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&conf); err != nil {
		t.Fatalf("%s: %v", example, err)
	}
	for kind := range conf.Plugin {
		if kind != "metrics" && kind != "checks" {
			t.Fatalf("%s: plugin kind %q", example, kind)
		}
	}
	return conf.Plugin["metrics"]
}

// containerAgentPlugin is a plugin block of mackerel-container-agent.
type containerAgentPlugin struct {
	Command        []string          `yaml:"command"`
	User           string            `yaml:"user"`
	TimeoutSeconds int               `yaml:"timeoutSeconds"`
	Env            map[string]string `yaml:"env"`
	Memo           string            `yaml:"memo"`
}

// containerAgentCommand is the command of the example's plugin block, with
// the plugin's path replaced by path.
func containerAgentCommand(t *testing.T, path string) []string {
	t.Helper()
	return containerAgentCommandOf(t, containerAgentExample, path)
}

// containerAgentCommandOf is containerAgentCommand of the example file.
func containerAgentCommandOf(t *testing.T, example, path string) []string {
	t.Helper()
	p, ok := containerAgentPluginsOf(t, example)["ecs-gostats"]
	if !ok || len(p.Command) == 0 {
		t.Fatalf("%s has no plugin: metrics: ecs-gostats: command", example)
	}
	return append([]string{path}, p.Command[1:]...)
}

// TestFargateTask: one task of two app containers serving stats on 8080 and
// 9090 in one network namespace, as on Fargate. The built binary, run in that
// namespace with ECS_CONTAINER_METADATA_URI_V4 set, reports both containers
// under their names; under mackerel-agent once, the same command's values
// and graph definitions come out as custom.gostats.<container>.*.
func TestFargateTask(t *testing.T) {
	needDocker(t)
	cluster := ownCluster(t, "fargate")
	network, gateway := ownNetwork(t, cluster)
	image := pluginImage(t)

	// The task: a pause-like container holding the network namespace (on the
	// test's network, as Fargate attaches the task's ENI to it), and the app
	// containers web and api in it, as the recorded task metadata lists them.
	const taskID = "4a5b6c7d8e9f40a1b2c3d4e5f6a7b8c9"
	pause := startNetnsTask(t, cluster, network, "fargate", taskID, map[string]string{"web": ":8080", "api": ":9090"}).pause

	// The stand-in for the task metadata endpoint serves the recorded Fargate
	// answer testdata/ecs/task-metadata-v4-fargate.json byte for byte. It
	// listens on the lab network's gateway, the host's address on that
	// network, which the task's containers reach as they reach 169.254.170.2
	// on Fargate; no process of the test runs in the task but the plugin.
	md := fargateMetadata(t, gateway)
	env := []string{"ECS_CONTAINER_METADATA_URI_V4=" + md.URL}
	// The command of examples/mackerel-container-agent.yml, where the lab image has the plugin.
	command := containerAgentCommand(t, "/mackerel-plugin-ecs-gostats")

	t.Run("the plugin in the task", func(t *testing.T) {
		r := inTask(t, image, cluster, pause, env, command[0], command[1:]...)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("exit %d, stderr:\n%s", r.code, r.stderr)
		}
		m := parseMetrics(t, r.stdout)
		assertKeys(t, m, keysFor([]string{"api", "web"}, gaugeMetrics))
		for _, c := range []string{"web", "api"} {
			if k := "gostats." + c + ".memory.memory_sys"; m[k] <= 0 {
				t.Errorf("%s = %f, want > 0", k, m[k])
			}
		}
		if got := md.Requests(); len(got) != 1 || got[0] != "GET "+strings.TrimPrefix(md.URL, "http://"+md.Addr())+"/task" {
			t.Errorf("task metadata requests %q, want one GET <base>/task", got)
		}
	})

	t.Run("under mackerel-agent once", func(t *testing.T) {
		toolBin(t, "MACKEREL_AGENT_BIN", "mackerel-agent")
		agentRun := agentOnceInTask(t, image, cluster, pause, env, command)
		if strings.Contains(agentRun.stderr, "Failed to fetch meta information") {
			t.Errorf("mackerel-agent could not read the plugin's graph definitions:\n%s", agentRun.stderr)
		}

		custom := agentCustomValues(t, []byte(agentRun.stdout))
		var want []string
		for _, k := range keysFor([]string{"api", "web"}, gaugeMetrics) {
			want = append(want, "custom."+k)
		}
		assertKeys(t, custom, want)

		// The graph definitions the agent posts are the plugin's meta output
		// under custom.: each value falls in one, whose wildcard stands for
		// the container.
		meta := inTask(t, image, cluster, pause, append(env, "MACKEREL_AGENT_PLUGIN_META=1"), command[0], command[1:]...)
		_, body, _ := strings.Cut(meta.stdout, "\n")
		var defs struct {
			Graphs map[string]struct {
				Metrics []struct{ Name string }
			}
		}
		if err := json.Unmarshal([]byte(body), &defs); err != nil {
			t.Fatalf("meta: %v\n%s", err, meta.stdout)
		}
		for k := range custom {
			// custom.gostats.<container>.<graph>.<metric>, or the run's own
			// custom.gostats_scrape.<graph>.<metric>
			f := strings.Split(strings.TrimPrefix(k, "custom."), ".")
			graph, metric := f[0]+"."+f[1], f[2]
			if len(f) == 4 {
				graph, metric = f[0]+".#."+f[2], f[3]
			}
			if !slices.ContainsFunc(defs.Graphs[graph].Metrics, func(m struct{ Name string }) bool { return m.Name == metric }) {
				t.Errorf("%s: no graph definition custom.%s with metric %s", k, graph, metric)
			}
		}
		if _, ok := custom["custom.gostats_scrape.targets.ok"]; !ok {
			t.Errorf("no custom.gostats_scrape.targets.ok in %v", slices.Sorted(maps.Keys(custom)))
		}
		if t.Failed() {
			t.Logf("mackerel-agent stderr:\n%s", agentRun.stderr)
		}
	})
}

// agentOnceInTask runs `mackerel-agent once` in a container of image (which
// has /mackerel-agent, see pluginImage) in the network namespace of the
// container netns, with env, configured with one metrics plugin block
// running command, and returns what it printed; it fails t when the agent
// does not exit 0.
func agentOnceInTask(t *testing.T, image, cluster, netns string, env, command []string) result {
	t.Helper()
	commandJSON, _ := json.Marshal(command)
	conf := fmt.Sprintf(`apikey = "dummy"
apibase = "http://127.0.0.1:9"
pidfile = "/tmp/mackerel-agent.pid"
root = "/tmp"
cloud_platform = "none"

[plugin.metrics.ecs-gostats]
command = %s
`, commandJSON)
	confFile := filepath.Join(t.TempDir(), "mackerel-agent.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	create := []string{"create", "--label", "com.amazonaws.ecs.cluster=" + cluster, "--network", "container:" + netns}
	for _, e := range env {
		create = append(create, "-e", e)
	}
	create = append(create, "--entrypoint", "/mackerel-agent", image, "once", "-conf", "/tmp/mackerel-agent.conf")
	created, err := docker(context.Background(), create...)
	if err != nil {
		t.Fatalf("%v: %s", err, created)
	}
	id := strings.TrimSpace(created)
	if out, err := docker(context.Background(), "cp", confFile, id+":/tmp/mackerel-agent.conf"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	r, err := runProcess(60*time.Second, append(os.Environ(), "DOCKER_HOST="+dockerHost), "docker", "start", "-a", id)
	if err == nil && r.code != 0 {
		err = fmt.Errorf("exit status %d", r.code)
	}
	if err != nil {
		t.Fatalf("mackerel-agent once: %v\nstderr:\n%s", err, r.stderr)
	}
	return r
}

// TestContainerAgentExamples: the mackerel-container-agent configuration, the
// image that carries it and the plugin, and the Fargate task definition that
// runs that image as a sidecar agree with each other and with the plugin: the
// built binary, given the example's arguments beside a stand-in for the task
// metadata endpoint serving the recorded answer of a task of that
// definition, finds every app container under its name.
func TestContainerAgentExamples(t *testing.T) {
	plugins := containerAgentPlugins(t)
	p, ok := plugins["ecs-gostats"]
	if len(plugins) != 1 || !ok {
		t.Fatalf("want exactly one metrics plugin, ecs-gostats: %v", plugins)
	}
	const installed = "/usr/local/bin/mackerel-plugin-ecs-gostats"
	if len(p.Command) == 0 || p.Command[0] != installed {
		t.Fatalf("command %q, want it to run %s", p.Command, installed)
	}
	assertTimeoutsFit(t, p.Command, int64(p.TimeoutSeconds))

	// The image: the plugin where the configuration runs it, the configuration where the task definition points.
	df, err := os.ReadFile("examples/Dockerfile.mackerel-container-agent")
	if err != nil {
		t.Fatal(err)
	}
	version, err := os.ReadFile("VERSION")
	if err != nil {
		t.Fatal(err)
	}
	const confPath = "/etc/mackerel-container-agent/ecs-gostats.yml"
	v := strings.TrimSpace(string(version))
	for _, want := range []string{
		"-t mackerel-container-agent-ecs-gostats:" + v + " .\n",
		"ARG PLUGIN_VERSION=" + v + "\n",
		"/releases/download/v${PLUGIN_VERSION}/mackerel-plugin-ecs-gostats_linux_${TARGETARCH}.zip",
		"\nFROM mackerel/mackerel-container-agent:",
		"COPY --from=plugin /plugin/mackerel-plugin-ecs-gostats " + installed + "\n",
		"COPY mackerel-container-agent.yml " + confPath + "\n",
	} {
		if !strings.Contains(string(df), want) {
			t.Errorf("examples/Dockerfile.mackerel-container-agent lacks %q", want)
		}
	}

	b, err := os.ReadFile("examples/ecs-fargate-task-definition.json")
	if err != nil {
		t.Fatal(err)
	}
	type keyValue struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom string `json:"valueFrom"`
	}
	var td struct {
		Family                  string   `json:"family"`
		NetworkMode             string   `json:"networkMode"`
		RequiresCompatibilities []string `json:"requiresCompatibilities"`
		CPU                     string   `json:"cpu"`
		Memory                  string   `json:"memory"`
		ContainerDefinitions    []struct {
			Name              string     `json:"name"`
			Image             string     `json:"image"`
			Essential         bool       `json:"essential"`
			MemoryReservation int        `json:"memoryReservation"`
			Environment       []keyValue `json:"environment"`
			Secrets           []keyValue `json:"secrets"`
			PortMappings      []struct {
				ContainerPort int    `json:"containerPort"`
				Protocol      string `json:"protocol"`
			} `json:"portMappings"`
		} `json:"containerDefinitions"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&td); err != nil {
		t.Fatalf("examples/ecs-fargate-task-definition.json: %v", err)
	}
	if td.NetworkMode != "awsvpc" || !slices.Equal(td.RequiresCompatibilities, []string{"FARGATE"}) {
		t.Errorf("networkMode %q, requiresCompatibilities %q: want awsvpc and FARGATE", td.NetworkMode, td.RequiresCompatibilities)
	}
	apps := map[string]string{} // app container -> where the plugin must find it
	var agent bool
	for _, c := range td.ContainerDefinitions {
		if c.Name != "mackerel-container-agent" {
			for _, pm := range c.PortMappings {
				if pm.Protocol == "tcp" {
					apps[c.Name] = fmt.Sprintf("127.0.0.1:%d", pm.ContainerPort)
				}
			}
			continue
		}
		agent = true
		if !strings.HasSuffix(c.Image, "/mackerel-container-agent-ecs-gostats:"+v) || c.Essential {
			t.Errorf("agent container: image %q (want the image of the Dockerfile), essential %v (want false: the app outlives the agent)", c.Image, c.Essential)
		}
		env := map[string]string{}
		for _, e := range c.Environment {
			env[e.Name] = e.Value
		}
		if env["MACKEREL_CONTAINER_PLATFORM"] != "ecs" || env["MACKEREL_AGENT_CONFIG"] != confPath {
			t.Errorf("agent environment %v: want MACKEREL_CONTAINER_PLATFORM=ecs and MACKEREL_AGENT_CONFIG=%s", env, confPath)
		}
		if !slices.ContainsFunc(c.Secrets, func(s keyValue) bool { return s.Name == "MACKEREL_APIKEY" && s.ValueFrom != "" }) {
			t.Error("agent container: no MACKEREL_APIKEY secret")
		}
	}
	if !agent || len(apps) == 0 {
		t.Fatalf("want the agent container and app containers with TCP ports: %+v", td.ContainerDefinitions)
	}

	// The plugin, with the example's arguments, in a task of this definition:
	// testdata/ecs/task-metadata-v4-fargate.json is a task of family shop.
	answer, err := os.ReadFile("testdata/ecs/task-metadata-v4-fargate.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(answer, []byte(`"Family": "`+td.Family+`"`)) {
		t.Fatalf("the recorded answer is not of family %s", td.Family)
	}
	md, err := standin.NewTaskMetadata("127.0.0.1:0", answer)
	if err != nil {
		t.Fatal(err)
	}
	defer md.Close()
	r := runPlugin(t, []string{"ECS_CONTAINER_METADATA_URI_V4=" + md.URL},
		append(p.Command[1:], "--list", "--timeout", "1s", "--tempfile", filepath.Join(t.TempDir(), "state"))...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("the plugin with the example's arguments: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		if strings.Contains(line, " passed over: ") { // the task's containers without ports
			continue
		}
		if f := strings.Fields(line); len(f) >= 5 && f[0] == f[4] { // name ... key: the key is the container's name
			got[f[0]] = f[3]
		} else {
			t.Errorf("--list line %q: want the key to be the container's name", line)
		}
	}
	if !maps.Equal(got, apps) {
		t.Errorf("the plugin finds %v, want every app container of the task definition, %v", got, apps)
	}
}

// fargateMetadata starts the stand-in for the task metadata endpoint,
// serving the recorded Fargate answer on addr (a test network's gateway,
// where a task's containers reach the host), and stops it when the test
// ends.
func fargateMetadata(t *testing.T, addr string) *standin.Server {
	t.Helper()
	answer, err := os.ReadFile("testdata/ecs/task-metadata-v4-fargate.json")
	if err != nil {
		t.Fatal(err)
	}
	md, err := standin.NewTaskMetadata(addr+":0", answer)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { md.Close() })
	return md
}
