package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/standin"
)

// TestServicePrecedence: the service name of a target, first found wins:
// the gostats.service.name label, the container's OTEL_SERVICE_NAME,
// service.name of its OTEL_RESOURCE_ATTRIBUTES, the family, the container
// name; namespace and environment from OTEL_RESOURCE_ATTRIBUTES only.
func TestServicePrecedence(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		env    []string // nil: the environment was not read
		family string
		want   service
	}{
		{"label beats everything", map[string]string{"gostats.service.name": "billing"},
			[]string{"OTEL_SERVICE_NAME=checkout", "OTEL_RESOURCE_ATTRIBUTES=service.name=cart,service.namespace=shop"}, "web",
			service{name: "billing", from: "label", namespace: "shop"}},
		{"OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES", nil,
			[]string{"OTEL_RESOURCE_ATTRIBUTES=service.name=cart,deployment.environment.name=prod", "OTEL_SERVICE_NAME=checkout"}, "web",
			service{name: "checkout", from: "OTEL_SERVICE_NAME", env: "prod"}},
		{"service.name of OTEL_RESOURCE_ATTRIBUTES beats the family", nil,
			[]string{"PATH=/bin", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop,service.name=cart%20v2,deployment.environment.name=stag%2Cing"}, "web",
			service{name: "cart v2", from: "OTEL_RESOURCE_ATTRIBUTES", namespace: "shop", env: "stag,ing"}},
		{"an empty OTEL_SERVICE_NAME is none", nil, []string{"OTEL_SERVICE_NAME="}, "web",
			service{name: "web", from: "family"}},
		{"nothing in the environment: the family", nil, []string{"HOME=/root"}, "web", service{name: "web", from: "family"}},
		{"environment not read: the family", nil, nil, "web", service{name: "web", from: "family"}},
		{"an empty label is none", map[string]string{"gostats.service.name": ""}, nil, "web", service{name: "web", from: "family"}},
		{"no family: the container name", nil, []string{}, "", service{name: "app", from: "container name"}},
		{"a malformed list is ignored whole, OTEL_SERVICE_NAME is not", nil,
			[]string{"OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop,broken", "OTEL_SERVICE_NAME=checkout"}, "web",
			service{name: "checkout", from: "OTEL_SERVICE_NAME"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tg := target{Labels: tt.labels, Family: tt.family, ECSContainer: "app", ContainerName: "ecs-web-1-app-0001"}
			var env *serviceEnv
			if tt.env != nil {
				s, _ := serviceEnvOf(otelVars(tt.env))
				env = &s
			}
			if got := serviceOf(tg, env); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	// a plain Docker container: its Docker name
	if got := serviceOf(target{ContainerName: "gostats-1"}, nil); got != (service{name: "gostats-1", from: "container name"}) {
		t.Errorf("plain container: %+v", got)
	}
}

// TestServiceLabelIsNoOptIn: gostats.service.name does not opt a container
// in under --opt-in; the other gostats.* labels do.
func TestServiceLabelIsNoOptIn(t *testing.T) {
	if ok, _ := labelSettings(map[string]string{"gostats.service.name": "billing"}, testFormats).selected(true); ok {
		t.Error("gostats.service.name opted the container in")
	}
	if ok, _ := labelSettings(map[string]string{"gostats.service.name": "billing", "gostats.scrape": "true"}, testFormats).selected(true); !ok {
		t.Error("gostats.scrape=true beside gostats.service.name did not opt in")
	}
}

// fakeEnver answers containerEnv from envs (container id -> environment);
// an id in fail fails. It records the ids asked.
type fakeEnver struct {
	envs  map[string][]string
	fail  map[string]bool
	mu    sync.Mutex
	asked []string
}

func (f *fakeEnver) containerEnv(ctx context.Context, ids []string, concurrency int) map[string]envResult {
	f.mu.Lock()
	f.asked = append(f.asked, ids...)
	f.mu.Unlock()
	out := map[string]envResult{}
	for _, id := range ids {
		if f.fail[id] {
			out[id] = envResult{err: errors.New("Error response from daemon: No such container: " + id)}
			continue
		}
		out[id] = envResult{vars: otelVars(f.envs[id])}
	}
	return out
}

func keyedOf(ts ...target) []keyed {
	var ks []keyed
	for _, t := range ts {
		ks = append(ks, keyed{target: t})
	}
	return ks
}

// TestServiceLookupMalformed: a container's malformed OTEL_RESOURCE_ATTRIBUTES
// is one warning naming the container, never its value, and is ignored
// whole; what is remembered is "nothing".
func TestServiceLookupMalformed(t *testing.T) {
	const id = "5ea45ea45ea45ea45ea4"
	f := &fakeEnver{envs: map[string][]string{id: {"SECRET=hunter2", "OTEL_RESOURCE_ATTRIBUTES=service.name=cart,token=s3cr3t,oops"}}}
	l := serviceLookup{enver: f, concurrency: 4}
	got := l.lookup(t.Context(), keyedOf(target{ContainerID: id, ContainerName: "web-a", PrivatePort: 8080}, target{ContainerID: id, ContainerName: "web-a", PrivatePort: 9090}))
	want := []string{"container web-a 5ea45ea45ea4: its OTEL_RESOURCE_ATTRIBUTES is malformed, ignored whole (see the OpenTelemetry specification: key=value pairs, comma-separated, percent-encoded)"}
	if !slices.Equal(got.warnings, want) {
		t.Errorf("warnings %q\nwant %q", got.warnings, want)
	}
	if !maps.Equal(got.envs, map[string]serviceEnv{id: {}}) {
		t.Errorf("envs %v, want nothing remembered for %s", got.envs, id)
	}
	if !slices.Equal(f.asked, []string{id}) {
		t.Errorf("asked %q, want the container once", f.asked)
	}
}

// TestServiceLookupFails: a container whose environment cannot be read
// falls back to its family (a warning naming it), is not remembered, and is
// read again at the next run; a remembered one is not.
func TestServiceLookupFails(t *testing.T) {
	const a, b = "aaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb"
	f := &fakeEnver{envs: map[string][]string{a: {"OTEL_SERVICE_NAME=checkout"}, b: {"OTEL_SERVICE_NAME=billing"}}, fail: map[string]bool{b: true}}
	targets := keyedOf(target{ContainerID: a, ContainerName: "web-a", Family: "web"}, target{ContainerID: b, ContainerName: "web-b", Family: "web"})
	first := (&serviceLookup{enver: f, concurrency: 4}).lookup(t.Context(), targets)
	want := []string{"service.name of container web-b bbbbbbbbbbbb: cannot read its environment (Error response from daemon: No such container: bbbbbbbbbbbbbbbbbbbb); its family stands in until a run can"}
	if !slices.Equal(first.warnings, want) {
		t.Errorf("warnings %q\nwant %q", first.warnings, want)
	}
	if !maps.Equal(first.envs, map[string]serviceEnv{a: {Name: "checkout", From: "OTEL_SERVICE_NAME"}}) {
		t.Errorf("first run: %v", first.envs)
	}
	r := report{services: first.envs}
	if s := r.service(targets[1].target); s != (service{name: "web", from: "family"}) {
		t.Errorf("the failed container's service %+v, want its family", s)
	}

	f.asked, f.fail = nil, nil
	second := (&serviceLookup{enver: f, concurrency: 4, known: first.envs}).lookup(t.Context(), targets)
	if !slices.Equal(f.asked, []string{b}) || len(second.warnings) != 0 {
		t.Errorf("second run asked %q (warnings %q), want only %s", f.asked, second.warnings, b)
	}
	if !maps.Equal(second.envs, map[string]serviceEnv{a: {Name: "checkout", From: "OTEL_SERVICE_NAME"}, b: {Name: "billing", From: "OTEL_SERVICE_NAME"}}) {
		t.Errorf("second run: %v", second.envs)
	}
}

// countingInspector is a Docker daemon's inspect that takes a while and
// counts the calls in flight.
type countingInspector struct {
	inFlight, most atomic.Int64
	calls          atomic.Int64
}

func (c *countingInspector) ContainerInspect(ctx context.Context, id string) (engineapi.InspectResponse, error) {
	n := c.inFlight.Add(1)
	defer c.inFlight.Add(-1)
	c.calls.Add(1)
	for {
		m := c.most.Load()
		if n <= m || c.most.CompareAndSwap(m, n) {
			break
		}
	}
	time.Sleep(20 * time.Millisecond)
	var r engineapi.InspectResponse
	r.Config = &engineapi.Config{Env: []string{"SECRET=x", "OTEL_SERVICE_NAME=svc-" + id}}
	return r, nil
}

// TestInspectConcurrency: at most --concurrency inspects at once, each
// container once.
func TestInspectConcurrency(t *testing.T) {
	var ids []string
	for i := range 12 {
		ids = append(ids, fmt.Sprintf("c%02d", i))
	}
	ci := &countingInspector{}
	got := inspectEnvs(t.Context(), ci, ids, 3)
	if most := ci.most.Load(); most != 3 {
		t.Errorf("%d inspects at once, want 3", most)
	}
	if n := ci.calls.Load(); n != 12 || len(got) != 12 {
		t.Errorf("%d calls, %d results; want 12", n, len(got))
	}
	if r := got["c07"]; r.err != nil || r.vars != (containerEnvVars{serviceName: "svc-c07", hasServiceName: true}) {
		t.Errorf("c07: %+v", r)
	}
}

// TestInspectDeadline: a container whose turn comes after the deadline is
// not asked.
func TestInspectDeadline(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Millisecond) // each inspect takes 20 ms
	defer cancel()
	ci := &countingInspector{}
	got := inspectEnvs(ctx, ci, []string{"a", "b", "c", "d"}, 1)
	var notAsked int
	for _, r := range got {
		if r.err != nil && strings.HasPrefix(r.err.Error(), "not asked: the run's deadline passed") {
			notAsked++
		}
	}
	if notAsked < 3 || ci.calls.Load() > 1 {
		t.Errorf("%d not asked, %d calls; want the later ones not asked", notAsked, ci.calls.Load())
	}
}

// envSource is the static source whose containers have an environment.
type envSource struct {
	staticSource
	*fakeEnver
}

func envParts(targets []target, f *fakeEnver) parts {
	p := seamParts(time.Now, targets)
	p.sources = append(p.sources, sourceKind{name: "static-env", open: func(opts options, env sourceEnv) source {
		return envSource{staticSource{targets: targets, timeout: env.timeout}, f}
	}})
	return p
}

// TestServiceStateRun: through run, with an output that labels series the
// containers' environments are read once and remembered in the state
// (today's layout, its other fields kept), only for the containers listed;
// --list shows each target's service and where it came from; without such
// an output nothing is read. Of the environment only the service identity
// is in the state or any output.
func TestServiceStateRun(t *testing.T) {
	a, b := kvServer(t), kvServer(t)
	a.ContainerID, a.ContainerName, a.ECSContainer = "aaaaaaaaaaaaaaaaaaaa", "web-a", "app"
	b.ContainerID, b.ContainerName, b.ECSContainer = "bbbbbbbbbbbbbbbbbbbb", "web-b", "app"
	b.Labels = map[string]string{"gostats.service.name": "billing"}
	f := &fakeEnver{envs: map[string][]string{
		a.ContainerID: {"SECRET=s3cr3t-value", "OTEL_SERVICE_NAME=checkout", "OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=prod,token=s3cr3t-attr"},
		b.ContainerID: {"OTEL_SERVICE_NAME=ignored", "OTEL_RESOURCE_ATTRIBUTES=service.namespace=shop"},
	}}
	state := filepath.Join(t.TempDir(), "state")
	args := []string{"--source", "static-env", "--format", "kv", "--key", "{family}-{slot}", "--tempfile", state, "--timeout", "5s"}
	runWith := func(targets []target, extra ...string) (string, string) {
		t.Helper()
		var out, errOut strings.Builder
		if code := run(t.Context(), envParts(targets, f), append(slices.Clone(args), extra...), "test", &out, &errOut); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut.String())
		}
		return out.String(), errOut.String()
	}

	// without an output that labels: nothing read, nothing remembered
	runWith([]target{a, b}, "--output", "mackerel")
	if len(f.asked) != 0 {
		t.Errorf("--output mackerel read the environment of %q", f.asked)
	}
	if s, _ := loadState(state); s.Services != nil {
		t.Errorf("--output mackerel remembered services %v", s.Services)
	}

	stdout, stderr := runWith([]target{a, b}, "--output", "mackerel,capture")
	if got := slices.Sorted(slices.Values(f.asked)); !slices.Equal(got, []string{a.ContainerID, b.ContainerID}) {
		t.Errorf("asked %q, want each container once", got)
	}
	s, err := loadState(state)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]serviceEnv{
		a.ContainerID: {Name: "checkout", From: "OTEL_SERVICE_NAME", Env: "prod"},
		b.ContainerID: {Name: "ignored", From: "OTEL_SERVICE_NAME", Namespace: "shop"},
	}
	if !maps.Equal(s.Services, want) || len(s.Slots) == 0 || len(s.Tasks) != 2 {
		t.Errorf("state: services %v, slots %v, tasks %v\nwant services %v and the slots and tasks kept", s.Services, s.Slots, s.Tasks, want)
	}

	// --list: the service and where it came from; the environment read no more
	f.asked = nil
	list, _ := runWith([]target{a, b}, "--output", "mackerel,capture", "--list")
	for _, w := range []string{"service.name=checkout (OTEL_SERVICE_NAME)", "service.name=billing (label)"} {
		if !strings.Contains(list, w) {
			t.Errorf("--list has no %q:\n%s", w, list)
		}
	}
	if len(f.asked) != 0 {
		t.Errorf("asked %q again: it is remembered", f.asked)
	}

	// b no longer listed: its record goes
	runWith([]target{a}, "--output", "mackerel,capture")
	if s, _ := loadState(state); !maps.Equal(s.Services, map[string]serviceEnv{a.ContainerID: want[a.ContainerID]}) {
		t.Errorf("services %v after b went, want a's only", s.Services)
	}

	raw, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stdout": stdout, "stderr": stderr, "--list": list, "state": string(raw)} {
		for _, secret := range []string{"s3cr3t", "SECRET", "token"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s has %q:\n%s", what, secret, text)
			}
		}
	}
}

// TestStateServicesLayout: a state file of today's layout without
// services keeps its slots, learnt formats and rates; one with services
// reads them back.
func TestStateServicesLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	old := `{"version":1,"tasks":{"web-1":{"target":"c1:8080","time":1800000000,"counters":{"gc.gc_num":5}}},` +
		`"slots":{"web":{"c1:8080":1}},"learnt":{"c1:8080":{"format":"prometheus","path":"/metrics","time":1800000000}}}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := loadState(path)
	if err != nil || s.Slots["web"]["c1:8080"] != 1 || s.Learnt["c1:8080"].Format != "prometheus" || s.Tasks["web-1"].Counters["gc.gc_num"] != 5 || s.Services != nil {
		t.Errorf("today's layout: %+v, %v", s, err)
	}
	withServices := strings.TrimSuffix(old, "}") + `,"services":{"c1":{"name":"checkout","from":"OTEL_SERVICE_NAME","env":"prod"},"c2":{}}}`
	if err := os.WriteFile(path, []byte(withServices), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = loadState(path)
	if err != nil || s.Slots["web"]["c1:8080"] != 1 ||
		!maps.Equal(s.Services, map[string]serviceEnv{"c1": {Name: "checkout", From: "OTEL_SERVICE_NAME", Env: "prod"}, "c2": {}}) {
		t.Errorf("with services: %+v, %v", s, err)
	}
}

// TestImageSplit: container.image.name without the tag, the tag alone.
func TestImageSplit(t *testing.T) {
	for _, tt := range []struct{ in, name, tag string }{
		{"nginx", "nginx", ""},
		{"nginx:1.27", "nginx", "1.27"},
		{"123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop/web:v42", "123456789012.dkr.ecr.ap-northeast-1.amazonaws.com/shop/web", "v42"},
		{"registry.local:5000/team/app", "registry.local:5000/team/app", ""},
		{"registry.local:5000/team/app:2.0", "registry.local:5000/team/app", "2.0"},
		{"app@sha256:0123abcd", "app", ""},
		{"registry.local:5000/app:1.2@sha256:0123abcd", "registry.local:5000/app", "1.2"},
		{"sha256:0123abcd", "", ""},
		{"", "", ""},
	} {
		if name, tag := splitImage(tt.in); name != tt.name || tag != tt.tag {
			t.Errorf("splitImage(%q) = %q, %q; want %q, %q", tt.in, name, tag, tt.name, tt.tag)
		}
	}
}

// TestOTLPIdentityService: the resource of a target with its service, AZ,
// container instance and image, and the plugin's own
// OTEL_RESOURCE_ATTRIBUTES after it: the target's values win, the
// plugin's service.name renames no task.
func TestOTLPIdentityService(t *testing.T) {
	tg := target{Family: "web", ECSContainer: "app", ContainerID: "c0ffee", PrivatePort: 8080, TaskID: "t1",
		Zone: "ap-northeast-1a", InstanceARN: "arn:aws:ecs:ap-northeast-1:123456789012:container-instance/prod/0abc",
		Image: "registry.local:5000/shop/web:v42@sha256:0123"}
	id := identityOf(tg)
	id.Service = service{name: "checkout", from: "OTEL_SERVICE_NAME", namespace: "shop", env: "prod"}
	o, err := openOTLPOutput(options{OTLPEndpoint: "127.0.0.1:4317", otelResourceAttrs: "service.name=plugin,deployment.environment.name=staging,team=core%2Cops,service.namespace=other"}, "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	attrs := withEnv(id.attributes(), o.(otlpOutput).env)
	var got []string
	for _, kv := range attrs {
		v := kv.Value.GetStringValue()
		if arr := kv.Value.GetArrayValue(); arr != nil {
			var vs []string
			for _, x := range arr.Values {
				vs = append(vs, x.GetStringValue())
			}
			v = "[" + strings.Join(vs, " ") + "]"
		}
		got = append(got, kv.Key+"="+v)
	}
	want := []string{"service.name=checkout", "service.namespace=shop", "service.instance.id=t1/app:8080", "deployment.environment.name=prod",
		"cloud.provider=aws", "cloud.platform=aws_ecs", "cloud.availability_zone=ap-northeast-1a",
		"aws.ecs.container.arn=arn:aws:ecs:ap-northeast-1:123456789012:container-instance/prod/0abc",
		"aws.ecs.task.id=t1", "aws.ecs.task.family=web", "container.name=app", "container.id=c0ffee",
		"container.image.name=registry.local:5000/shop/web", "container.image.tags=[v42]", "team=core,ops"}
	if !slices.Equal(got, want) {
		t.Errorf("attributes\n got %q\nwant %q", got, want)
	}
	o, _ = openOTLPOutput(options{OTLPEndpoint: "127.0.0.1:4317", otelResourceAttrs: "team=core,broken"}, "test", nil)
	if oo := o.(otlpOutput); !oo.envErr || oo.env != nil {
		t.Errorf("a malformed plugin list: %+v, want it ignored whole", oo)
	}
}

// TestOTLPReserve: with otlp, discovery and the scrapes end at the earlier
// of three quarters of --timeout and 5 s; the push has the rest.
func TestOTLPReserve(t *testing.T) {
	for _, tt := range []struct{ timeout, push time.Duration }{
		{4 * time.Second, time.Second},
		{5 * time.Second, 1250 * time.Millisecond},
		{6 * time.Second, 1500 * time.Millisecond},
		{8 * time.Second, 3 * time.Second},
		{15 * time.Second, 10 * time.Second},
		{30 * time.Second, 25 * time.Second},
	} {
		if got := (otlpOutput{}).reserve(tt.timeout); got != tt.push {
			t.Errorf("--timeout %s: the push keeps %s, want %s", tt.timeout, got, tt.push)
		}
	}
}

// TestDockerInspectOnlyWithOTLP: through the Docker source (the Engine API
// stand-in), a container is inspected only with otlp in --output, once:
// the next run takes it from the state file; its service name arrives in
// --list, and nothing else of its environment anywhere.
func TestDockerInspectOnlyWithOTLP(t *testing.T) {
	ports := fleet(t, 2, func(int) http.Handler { return realHandler })
	body, cs := fleetContainers(t, ports)
	d := &standin.Docker{Containers: body, Env: map[string][]string{
		cs[0].ID: {"SECRET=s3cr3t-value", "OTEL_SERVICE_NAME=checkout"},
	}}
	host := d.Start(t, "unix")
	inspects := func() (n int) {
		for _, r := range d.Requests() {
			if strings.HasPrefix(r, "GET /v1.41/containers/") && strings.HasSuffix(r, "/json") && !strings.HasSuffix(r, "/containers/json") {
				n++
			}
		}
		return n
	}
	state := filepath.Join(t.TempDir(), "state")
	otlp := []string{"--output", "mackerel,otlp", "--otlp-endpoint", fmt.Sprintf("127.0.0.1:%d", refusingPort(t)), "--otlp-insecure",
		"--ecs-agent-url", ecsAgentMetadata(t), "--tempfile", state}

	runPlugin(t, "--docker-host", host, "--tempfile", state)
	if n := inspects(); n != 0 {
		t.Errorf("--output mackerel: %d inspects, want none", n)
	}
	r := runPlugin(t, append([]string{"--docker-host", host}, otlp...)...)
	if n := inspects(); n != 2 {
		t.Errorf("with otlp: %d inspects, want one per container (2); stderr %q", n, r.stderr)
	}
	list := runPlugin(t, append([]string{"--docker-host", host, "--list"}, otlp...)...)
	if n := inspects(); n != 2 {
		t.Errorf("the next run (--list): %d inspects in all, want none more", n)
	}
	joined := strings.Join(list.keys, "\n")
	if !strings.Contains(joined, "service.name=checkout (OTEL_SERVICE_NAME)") || !strings.Contains(joined, "service.name=web (family)") {
		t.Errorf("--list:\n%s", joined)
	}
	st, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"stdout": r.stdout, "stderr": strings.Join(r.stderr, "\n"), "--list": joined, "state": string(st)} {
		if strings.Contains(text, "s3cr3t") || strings.Contains(text, "SECRET") {
			t.Errorf("%s has the container's secret:\n%s", what, text)
		}
	}
}
