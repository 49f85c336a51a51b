package mpecsgostats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// loadContainers reads a real /containers/json answer captured from dockerd
// (filters label=com.amazonaws.ecs.cluster=capture, status=running).
func loadContainers(t testing.TB, name string) []engineapi.Summary {
	t.Helper()
	var cs []engineapi.Summary
	if err := json.Unmarshal(readTestdata(t, name), &cs); err != nil {
		t.Fatal(err)
	}
	return cs
}

func TestTargetsFrom(t *testing.T) {
	containers := loadContainers(t, "containers.json")
	// What the capture holds, as docker ps shows it:
	//   ecs-metrics-1-metrics  127.0.0.2:32768->8080/tcp
	//   ecs-agent              8080/tcp (not published)
	//   ecs-admin-1-admin      127.0.0.1:32768->8080/tcp (same port number as metrics)
	//   ecs-worker-4-worker    8080/tcp (not published)
	//   ecs-statsd-2-statsd    0.0.0.0 and [::]:32772->8080/tcp, 32768->8125/udp
	//   ecs-api-7-api          0.0.0.0 and [::]:32771->8080/tcp, 32770->9090/tcp
	//   ecs-web-3-web          0.0.0.0 and [::]:32769->8080/tcp
	metrics := target{ContainerID: "7c3d15ed6b9a", ContainerName: "ecs-metrics-1-metrics-e1f2a3b4c5d6e7f8a901", Family: "metrics", Host: "127.0.0.2", HostPort: 32768, PrivatePort: 8080}
	web := target{ContainerID: "d6f4005db94f", ContainerName: "ecs-web-3-web-e8c6b0a1f2d3c4b5a601", Family: "web", Host: "127.0.0.1", HostPort: 32769, PrivatePort: 8080}
	api9090 := target{ContainerID: "d01217798a9a", ContainerName: "ecs-api-7-api-9a8b7c6d5e4f3a2b1c01", Family: "api", Host: "127.0.0.1", HostPort: 32770, PrivatePort: 9090}
	api8080 := target{ContainerID: "d01217798a9a", ContainerName: "ecs-api-7-api-9a8b7c6d5e4f3a2b1c01", Family: "api", Host: "127.0.0.1", HostPort: 32771, PrivatePort: 8080}
	statsd := target{ContainerID: "69e95580c7d3", ContainerName: "ecs-statsd-2-statsd-b1c2d3e4f5a6b7c8d901", Family: "statsd", Host: "127.0.0.1", HostPort: 32772, PrivatePort: 8080}
	conflict := "host port 32768 of container ecs-admin-1-admin-d9e8f7a6b5c4d3e2f101 skipped: container ecs-metrics-1-metrics-e1f2a3b4c5d6e7f8a901 publishes it too"

	withHost := func(host string, ts ...target) []target {
		for i := range ts {
			ts[i].Host = host
		}
		return ts
	}
	tests := []struct {
		name     string
		d        dockerSource
		want     []target
		warnings []string
	}{
		{"every published tcp port once", dockerSource{}, []target{metrics, web, api9090, api8080, statsd}, []string{conflict}},
		{"one container port", dockerSource{ContainerPort: 8080}, []target{metrics, web, api8080, statsd}, []string{conflict}},
		{"a port no container publishes", dockerSource{ContainerPort: 9999}, nil, nil},
		{"--host overrides the binding", dockerSource{ContainerPort: 9090, HostAddr: "::1"}, withHost("::1", api9090), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.d.targetsFrom(containers)
			got, warnings := f.targets, f.warnings
			if !reflect.DeepEqual(placesOf(got), placesOf(tt.want)) {
				t.Errorf("targets:\n got %+v\nwant %+v", got, tt.want)
			}
			if !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("warnings:\n got %q\nwant %q", warnings, tt.warnings)
			}
		})
	}
}

// TestTargetsFromSplitPorts: dockerd may publish one container port under two
// host port numbers, 0.0.0.0:32926 and [::]:32912 (captured from dockerd
// 20.10), and its docker-proxy on :: takes IPv6 only.
func TestTargetsFromSplitPorts(t *testing.T) {
	split := loadContainers(t, "containers_split.json")
	v6only := loadContainers(t, "containers_split.json")
	v6only[0].Ports = v6only[0].Ports[1:]
	base := target{ContainerID: "dc7992b8d80b", ContainerName: "ecs-split-1-split-f0e1d2c3b4a5968778a1", Family: "split", PrivatePort: 8080}
	with := func(host string, port uint16) []target {
		t := base
		t.Host, t.HostPort = host, port
		return []target{t}
	}
	tests := []struct {
		name       string
		containers []engineapi.Summary
		want       []target
	}{
		{"the IPv4 binding, as docker ps | cut took it", split, with("127.0.0.1", 32926)},
		{"published on :: only", v6only, with("::1", 32912)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := dockerSource{}.targetsFrom(tt.containers)
			got, warnings := f.targets, f.warnings
			if !reflect.DeepEqual(placesOf(got), placesOf(tt.want)) || len(warnings) != 0 {
				t.Errorf("got %+v, %q\nwant %+v", got, warnings, tt.want)
			}
		})
	}
}

// place is where discovery says a target is, and which container it is.
type place struct {
	id, name, family string
	addr             string // what is dialled
	hostPort         uint16 // what {port} names
	privatePort      uint16
}

// placesOf is what TestTargetsFrom compares; wants give HostPort and Host,
// and in host-port mode the port dialled is the host port.
func placesOf(ts []target) []place {
	var ps []place
	for _, t := range ts {
		if t.Port == 0 {
			t.Port = t.HostPort
		}
		ps = append(ps, place{t.ShortID(), t.ContainerName, t.Family, t.Addr(), t.HostPort, t.PrivatePort})
	}
	return ps
}

// TestTargetFromLabels: everything keys and warnings need comes from the
// one /containers/json answer.
func TestTargetFromLabels(t *testing.T) {
	containers := loadContainers(t, "containers.json")
	got := dockerSource{}.targetsFrom(containers[6:]).targets // ecs-web-3-web
	want := []target{{
		ContainerID:   containers[6].ID,
		ContainerName: "ecs-web-3-web-e8c6b0a1f2d3c4b5a601",
		Created:       1795613084,
		Started:       1795613084,
		Family:        "web",
		ECSContainer:  "web",
		TaskARN:       "arn:aws:ecs:ap-northeast-1:123456789012:task/capture/5f1d7a3c9b2e4c0d8a6b1e2f3a4b5c6d",
		TaskID:        "5f1d7a3c9b2e4c0d8a6b1e2f3a4b5c6d",
		Cluster:       "capture",
		LaunchType:    "EC2",
		ARN:           taskARN{Partition: "aws", Region: "ap-northeast-1", Account: "123456789012", ID: "5f1d7a3c9b2e4c0d8a6b1e2f3a4b5c6d"},
		Labels:        containers[6].Labels,
		Image:         "statsapp:test",
		Host:          "127.0.0.1",
		Port:          32769,
		HostPort:      32769,
		PrivatePort:   8080,
	}}
	// the source's words for a placeholder without a value: a func, compared by what it says
	var gaps []string
	for i := range got {
		if got[i].gap != nil {
			gaps = append(gaps, got[i].gap("revision").why)
		}
		got[i].gap = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	if want := []string{"it has no label com.amazonaws.ecs.task-definition-version"}; !reflect.DeepEqual(gaps, want) {
		t.Errorf("gap of {revision}: %q, want %q", gaps, want)
	}
}

// TestContainerIPTargets: --address container-ip reaches each container at
// its address on its network and its private port, published or not.
func TestContainerIPTargets(t *testing.T) {
	containers := loadContainers(t, "containers.json")
	byName := func(ps []place) map[string][]place {
		m := map[string][]place{}
		for _, p := range ps {
			m[p.name] = append(m[p.name], p)
		}
		return m
	}
	web := containers[6]
	shared := web // a container in the network namespace of another, not of an ECS task
	shared.Names = []string{"/ecs-web-3-sidecar"}
	shared.Labels = map[string]string{}
	shared.HostConfig.NetworkMode = "container:7c3d15ed6b9a"
	shared.NetworkSettings = &engineapi.NetworkSettingsSummary{Networks: map[string]*engineapi.EndpointSettings{}}
	twoNets := web
	twoNets.NetworkSettings = &engineapi.NetworkSettingsSummary{Networks: map[string]*engineapi.EndpointSettings{
		"zeta":  {IPAddress: "10.9.0.2"},
		"alpha": {IPAddress: ""},
		"beta":  {IPAddress: "10.8.0.2"},
	}}
	tests := []struct {
		name       string
		d          dockerSource
		containers []engineapi.Summary
		want       map[string][]string // container name -> addresses dialled
		warnings   []string
	}{
		{"no address: skipped", dockerSource{Address: addressContainerIP}, []engineapi.Summary{shared}, map[string][]string{},
			[]string{"container ecs-web-3-sidecar d6f4005db94f skipped: no IPv4 address on any network (network mode container:7c3d15ed6b9a); --address container-ip needs one"}},
		{"the first network by name with an address", dockerSource{Address: addressContainerIP}, []engineapi.Summary{twoNets},
			map[string][]string{"ecs-web-3-web-e8c6b0a1f2d3c4b5a601": {"10.8.0.2:8080"}}, nil},
		{"--network", dockerSource{Address: addressContainerIP, Network: "zeta"}, []engineapi.Summary{twoNets},
			map[string][]string{"ecs-web-3-web-e8c6b0a1f2d3c4b5a601": {"10.9.0.2:8080"}}, nil},
		{"--network without an address there", dockerSource{Address: addressContainerIP, Network: "alpha"}, []engineapi.Summary{twoNets},
			map[string][]string{}, []string{"container ecs-web-3-web-e8c6b0a1f2d3c4b5a601 d6f4005db94f skipped: no IPv4 address on network alpha (--network)"}},
		{"every listed TCP port", dockerSource{Address: addressContainerIP}, containers, map[string][]string{
			"ecs-metrics-1-metrics-e1f2a3b4c5d6e7f8a901": {"172.17.0.8:8080"},
			"ecs-agent":                                {"172.17.0.7:8080"},
			"ecs-admin-1-admin-d9e8f7a6b5c4d3e2f101":   {"172.17.0.6:8080"},
			"ecs-worker-4-worker-c0d1e2f3a4b5c6d7e801": {"172.17.0.5:8080"},
			"ecs-statsd-2-statsd-b1c2d3e4f5a6b7c8d901": {"172.17.0.4:8080"},
			"ecs-api-7-api-9a8b7c6d5e4f3a2b1c01":       {"172.17.0.3:8080", "172.17.0.3:9090"},
			"ecs-web-3-web-e8c6b0a1f2d3c4b5a601":       {"172.17.0.2:8080"},
		}, nil},
		{"--container-port", dockerSource{Address: addressContainerIP, ContainerPort: 9090}, containers, map[string][]string{
			"ecs-metrics-1-metrics-e1f2a3b4c5d6e7f8a901": {"172.17.0.8:9090"},
			"ecs-agent":                                {"172.17.0.7:9090"},
			"ecs-admin-1-admin-d9e8f7a6b5c4d3e2f101":   {"172.17.0.6:9090"},
			"ecs-worker-4-worker-c0d1e2f3a4b5c6d7e801": {"172.17.0.5:9090"},
			"ecs-statsd-2-statsd-b1c2d3e4f5a6b7c8d901": {"172.17.0.4:9090"},
			"ecs-api-7-api-9a8b7c6d5e4f3a2b1c01":       {"172.17.0.3:9090"},
			"ecs-web-3-web-e8c6b0a1f2d3c4b5a601":       {"172.17.0.2:9090"},
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.d.targetsFrom(tt.containers)
			got, warnings := f.targets, f.warnings
			addrs := map[string][]string{}
			for name, ps := range byName(placesOf(got)) {
				for _, p := range ps {
					addrs[name] = append(addrs[name], p.addr)
				}
			}
			if !reflect.DeepEqual(addrs, tt.want) || !reflect.DeepEqual(warnings, tt.warnings) {
				t.Errorf("addresses %v, warnings %q\nwant %v, %q", addrs, warnings, tt.want, tt.warnings)
			}
		})
	}
}

// recordingLister stands in for the daemon to see what discovery asks it.
type recordingLister struct {
	calls []map[string][]string // the filters of each call
	reply []engineapi.Summary
}

func (l *recordingLister) ContainerList(_ context.Context, filters map[string][]string) ([]engineapi.Summary, error) {
	l.calls = append(l.calls, filters)
	return l.reply, nil
}

// Info is the daemon's own information: none here.
func (l *recordingLister) Info(context.Context) (engineapi.Info, error) { return engineapi.Info{}, nil }

func TestTargetsPassesFiltersToDaemon(t *testing.T) {
	l := &recordingLister{reply: loadContainers(t, "containers.json")}
	d := dockerSource{Names: []string{"ecs-web"}, Labels: []string{"com.amazonaws.ecs.cluster=prod", "com.amazonaws.ecs.task-definition-family"}}
	containers, err := d.listWith(context.Background(), l)
	if err != nil {
		t.Fatal(err)
	}
	targets := d.targetsFrom(containers).targets
	if len(l.calls) != 1 {
		t.Fatalf("ContainerList called %d times, want 1", len(l.calls))
	}
	o := l.calls[0]
	for key, want := range map[string][]string{
		"status": {"running"},
		"name":   {"ecs-web"},
		"label":  {"com.amazonaws.ecs.cluster=prod", "com.amazonaws.ecs.task-definition-family"},
	} {
		got := o[key]
		if !sameSet(got, want) {
			t.Errorf("filter %s = %q, want %q", key, got, want)
		}
	}
	if len(targets) != 5 {
		t.Errorf("got %d targets, want 5", len(targets))
	}
}

// TestContainerListQuery: the daemon is asked for the filters discovery
// makes, in the form the Engine API reference gives them
// ({"name":["value",...]}), and never with all=true, which would list the
// exited containers too.
func TestContainerListQuery(t *testing.T) {
	var query url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Query()
		fmt.Fprint(w, `[{"Id":"c0ffee","Names":["/web"]}]`)
	}))
	t.Cleanup(srv.Close)
	e, err := newEngine("tcp://"+srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	d := dockerSource{Names: []string{"ecs-web"}, Labels: []string{"com.amazonaws.ecs.cluster=prod", "com.amazonaws.ecs.task-definition-family"}}
	list, err := d.listWith(t.Context(), e)
	if err != nil || len(list) != 1 || list[0].ID != "c0ffee" || containerName(list[0]) != "web" {
		t.Fatalf("list %+v, error %v", list, err)
	}
	want := `{"label":["com.amazonaws.ecs.cluster=prod","com.amazonaws.ecs.task-definition-family"],"name":["ecs-web"],"status":["running"]}`
	if got := query.Get("filters"); got != want {
		t.Errorf("filters %s\nwant %s", got, want)
	}
	if query.Has("all") {
		t.Errorf("all=%s: exited containers would be listed", query.Get("all"))
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		if !m[s] {
			return false
		}
	}
	return true
}

// TestDaemonFaults runs discovery with the plugin's Engine API client against
// sockets that fail the way a broken or absent dockerd does.
func TestDaemonFaults(t *testing.T) {
	dir := t.TempDir()

	// A socket file whose daemon is gone: nothing listens on it.
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()

	// A daemon that accepts and never answers.
	hung := filepath.Join(dir, "hung.sock")
	hl, err := net.Listen("unix", hung)
	if err != nil {
		t.Fatal(err)
	}
	defer hl.Close()
	go func() {
		for {
			c, err := hl.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()

	tests := []struct {
		name string
		host string
		want string
	}{
		{"socket missing", "unix://" + dir + "/missing.sock",
			"cannot list containers at unix://" + dir + "/missing.sock: socket not found: is dockerd running? set --docker-host if it listens elsewhere"},
		{"nothing listening", "unix://" + stale,
			"cannot list containers at unix://" + stale + ": connection refused: is dockerd running? set --docker-host if it listens elsewhere"},
		{"daemon hung", "unix://" + hung,
			"cannot list containers at unix://" + hung + ": no answer within 300ms: the daemon is hung or overloaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDockerSource(options{DockerHost: tt.host}, sourceEnv{timeout: 300 * time.Millisecond}).(dockerSource)
			defer d.Close()
			ctx, cancel := context.WithTimeout(context.Background(), d.Timeout)
			defer cancel()
			start := time.Now()
			_, err := d.discover(ctx)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v\nwant %s", err, tt.want)
			}
			if elapsed := time.Since(start); elapsed > 5*d.Timeout {
				t.Errorf("discovery took %s with a %s timeout", elapsed, d.Timeout)
			}
		})
	}
}

func TestExplainDockerError(t *testing.T) {
	// Root bypasses socket permissions, so "permission denied" is the error
	// the dialer returns for a socket the user cannot open.
	denied := &net.OpError{Op: "dial", Net: "unix", Err: &os.SyscallError{Syscall: "connect", Err: syscall.EACCES}}
	tests := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("wrapped: %w", denied), "cannot list containers at unix:///var/run/docker.sock: permission denied: run as root or as a user in the docker group"},
		{errors.New("Error response from daemon: boom\nsecond line"), "cannot list containers at unix:///var/run/docker.sock: Error response from daemon: boom second line"},
	}
	for _, tt := range tests {
		got := explainDockerError(defaultDockerHost, time.Second, tt.err).Error()
		if got != tt.want {
			t.Errorf("explainDockerError(%v)\n got %s\nwant %s", tt.err, got, tt.want)
		}
		if strings.Contains(got, "\n") {
			t.Errorf("more than one line: %q", got)
		}
	}
}
