package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// The Docker source (--source docker): the running containers of this
// container instance, with one Docker Engine API call. The containers of
// awsvpc tasks have no address in Docker: their addresses are asked of the
// ECS agent (ecsagent.go).

// How targets are reached (--address).
const (
	addressHostPort    = "host-port"    // the published host port, through docker-proxy
	addressContainerIP = "container-ip" // the container's own address and private port
)

// defaultDockerHost is where the ECS-optimized AMIs' dockerd listens.
const defaultDockerHost = "unix:///var/run/docker.sock"

// pauseContainerName is the com.amazonaws.ecs.container-name of the pause
// container the ECS agent starts for each awsvpc task to hold its network
// namespace. It is never a target.
const pauseContainerName = "~internal~ecs~pause"

// containerLister is the one Docker Engine call the source needs.
type containerLister interface {
	ContainerList(ctx context.Context, filters map[string][]string) ([]engineapi.Summary, error)
}

// daemonInfo is the one more call it makes for labels.
type daemonInfo interface {
	Info(ctx context.Context) (engineapi.Info, error)
}

// dockerSource selects the containers and ports to scrape.
type dockerSource struct {
	Host          string        // the daemon's address, unix:// or tcp://
	Names         []string      // docker ps --filter name=
	Labels        []string      // docker ps --filter label=
	ContainerPort uint16        // 0: every published TCP port (every listed one with container-ip)
	HostAddr      string        // --host; "": the binding's HostIP when specific, else loopback (see hostFor)
	Address       string        // addressHostPort ("" too) or addressContainerIP
	Network       string        // container-ip: the network whose address is used ("": the first by name)
	OptIn         bool          // only containers with a gostats.* or CloudWatch label
	Timeout       time.Duration // bounds each daemon call: the time the run gives discovery
	agent         ecsAgent      // asked for the awsvpc tasks' addresses
	formats       formatList    // what a gostats.format label may name
	labels        bool          // also ask what labels need: the daemon's name, the container instance's ARN
	engine        *engine       // the run's client of the daemon; nil when Host is not one (engineErr)
	engineErr     error
}

func openDockerSource(opts options, env sourceEnv) source {
	d := dockerSource{Host: opts.DockerHost, Names: opts.Names, Labels: opts.Labels, ContainerPort: opts.ContainerPort,
		HostAddr: opts.Host, Address: opts.Address, Network: opts.Network, OptIn: opts.OptIn, Timeout: env.timeout, formats: env.formats, labels: env.labels,
		agent: ecsAgent{URL: opts.ECSAgentURL, ContainerPort: opts.ContainerPort, OptIn: opts.OptIn, hc: env.hc, timeout: env.timeout / 2, formats: env.formats}}
	d.engine, d.engineErr = newEngine(d.Host, d.Timeout)
	return d
}

// Close ends the daemon's connections.
func (d dockerSource) Close() error {
	if d.engine == nil {
		return nil
	}
	return d.engine.Close()
}

// apiVersion is the Engine API version asked for first: dockerd 20.10 and
// later serve it, and naming it spares a version negotiation round trip on
// every run. A daemon that refuses it (Docker 29 serves 1.44 and later only)
// is asked again after negotiating (engine.get).
const apiVersion = "1.41"

// discover lists the running containers matching the filters (applied by
// the daemon) and makes their targets; the awsvpc tasks' containers get
// theirs from the ECS agent, whose failure costs those only (a warning and
// a discovery error). The error, when the daemon cannot be asked, is one
// line naming its address and the likely fix.
func (d dockerSource) discover(ctx context.Context) (found, error) {
	if d.engineErr != nil {
		return found{}, explainDockerError(d.Host, d.Timeout, d.engineErr)
	}
	containers, err := d.listWith(ctx, d.engine)
	if err != nil {
		return found{}, explainDockerError(d.Host, d.Timeout, err)
	}
	f := d.targetsFrom(containers)
	if awsvpc := awsvpcContainers(containers); len(awsvpc) > 0 {
		targets, passed, warnings, err := d.agent.targets(ctx, awsvpc)
		f.targets = append(f.targets, targets...)
		f.passed = append(f.passed, passed...)
		f.warnings = append(f.warnings, warnings...)
		if err != nil {
			f.warnings = append(f.warnings, err.Error())
			f.errors++
		}
	}
	if d.labels && len(f.targets) > 0 {
		d.identify(ctx, d.engine, &f)
	}
	return f, nil
}

// identify gives the targets what labels need: the daemon's name (the
// container instance's, also where the plugin runs in a container of its
// own) and the container instance's ARN, each asked once. A failure costs
// that label only, with a warning.
func (d dockerSource) identify(ctx context.Context, dc daemonInfo, f *found) {
	var host, instance string
	if info, err := dc.Info(ctx); err != nil {
		f.warnings = append(f.warnings, fmt.Sprintf("host.name not sent: cannot ask the Docker daemon at %s for its name: %s", d.Host, oneLine(err.Error())))
	} else {
		host = info.Name
	}
	if slices.ContainsFunc(f.targets, func(t target) bool { return t.TaskARN != "" }) {
		arn, refused, err := d.agent.instanceARN(ctx)
		if err != nil && !refused { // refused: no ECS agent here to ask
			f.warnings = append(f.warnings, "aws.ecs.container.arn not sent: "+err.Error())
		}
		instance = arn
	}
	for i := range f.targets {
		f.targets[i].HostName, f.targets[i].InstanceARN = host, instance
	}
}

func (d dockerSource) listWith(ctx context.Context, lister containerLister) ([]engineapi.Summary, error) {
	filters := map[string][]string{"status": {"running"}}
	if len(d.Names) > 0 {
		filters["name"] = d.Names
	}
	if len(d.Labels) > 0 {
		filters["label"] = d.Labels
	}
	return lister.ContainerList(ctx, filters)
}

// isAWSVPC tells a container of an awsvpc task: an ECS container in the
// network namespace of another (NetworkMode container:<pause id>), which
// Docker shows with no address and no ports.
func isAWSVPC(c engineapi.Summary) bool {
	return c.Labels[labelTaskARN] != "" && strings.HasPrefix(c.HostConfig.NetworkMode, "container:") && !isPause(c)
}

func isPause(c engineapi.Summary) bool { return c.Labels[labelContainerName] == pauseContainerName }

func awsvpcContainers(containers []engineapi.Summary) []engineapi.Summary {
	var out []engineapi.Summary
	for _, c := range containers {
		if isAWSVPC(c) {
			out = append(out, c)
		}
	}
	return out
}

// targetsFrom makes the targets of the containers Docker can give an
// address (not awsvpc ones, nor pause containers): with --address host-port
// one per published container TCP port, on its IPv4 binding when it has one
// (as the shell loop's `docker ps | cut` took it), else on its IPv6 one,
// sorted by host port; with --address container-ip see addContainerIPTargets,
// in Docker's order. Metric keys name the host port, so a host port
// another container already publishes (on another host IP) is skipped with a
// warning.
func (d dockerSource) targetsFrom(containers []engineapi.Summary) found {
	var f found
	owner := map[uint16]string{}
	for _, c := range containers {
		name := containerName(c)
		switch {
		case isPause(c):
			f.passed = append(f.passed, passedOver{name, c.ID, "the pause container of an awsvpc task"})
			continue
		case isAWSVPC(c):
			continue
		case d.Address == addressContainerIP:
			f.addContainerIPTargets(c, d)
			continue
		}
		pass, published, s := labelled(c.Labels, d.formats, d.OptIn, publishedBindings(c.Ports), d.ContainerPort, true)
		switch {
		case pass != "":
			f.passed = append(f.passed, passedOver{name, c.ID, pass})
			continue
		case s.err != nil:
			f.targets = append(f.targets, newTarget(c, s.port, 0).withSettings(s))
			continue
		case len(published) == 0:
			f.passed = append(f.passed, passedOver{name, c.ID, d.noPortWhy()})
		}
		for _, b := range published {
			if first, ok := owner[b.hostPort]; ok {
				f.warnings = append(f.warnings, fmt.Sprintf("host port %d of container %s skipped: container %s publishes it too", b.hostPort, name, first))
				continue
			}
			owner[b.hostPort] = name
			t := newTarget(c, b.containerPort, b.hostPort).withSettings(s)
			t.Host, t.Port = d.hostFor(b.hostIP), b.hostPort
			f.targets = append(f.targets, t)
		}
	}
	if d.Address != addressContainerIP {
		sort.SliceStable(f.targets, func(i, j int) bool { return f.targets[i].HostPort < f.targets[j].HostPort })
	}
	return f
}

func (d dockerSource) noPortWhy() string {
	if d.ContainerPort != 0 {
		return fmt.Sprintf("does not publish container port %d (--container-port)", d.ContainerPort)
	}
	return "publishes no TCP port"
}

// addContainerIPTargets reaches c at its own address on its network and
// its private ports: --container-port, else every TCP port it lists. The
// published host port, when there is one, still names {port}.
func (f *found) addContainerIPTargets(c engineapi.Summary, d dockerSource) {
	ip, why := d.containerAddress(c)
	if ip == "" {
		f.warnings = append(f.warnings, fmt.Sprintf("container %s %s skipped: %s", containerName(c), shortID(c.ID), why))
		return
	}
	published := map[uint16]uint16{} // container port -> host port
	for _, b := range pickBindings(publishedBindings(c.Ports), 0) {
		published[b.containerPort] = b.hostPort
	}
	listed := dockerBindings(c.Ports)
	if d.ContainerPort != 0 { // reached at the container's address, listed or not
		listed = append(listed, binding{containerPort: d.ContainerPort, tcp: true})
	}
	pass, ports, s := labelled(c.Labels, d.formats, d.OptIn, listed, d.ContainerPort, false)
	switch {
	case pass != "":
		f.passed = append(f.passed, passedOver{containerName(c), c.ID, pass})
		return
	case s.err != nil:
		f.targets = append(f.targets, newTarget(c, s.port, 0).withSettings(s))
		return
	case len(ports) == 0:
		f.passed = append(f.passed, passedOver{containerName(c), c.ID, "lists no TCP port"})
	}
	for _, b := range ports {
		t := newTarget(c, b.containerPort, published[b.containerPort]).withSettings(s)
		t.Host, t.Port = ip, b.containerPort
		f.targets = append(f.targets, t)
	}
}

func dockerBindings(ports []engineapi.Port) []binding {
	bs := make([]binding, 0, len(ports))
	for _, p := range ports {
		bs = append(bs, binding{containerPort: p.PrivatePort, hostPort: p.PublicPort, hostIP: p.IP, tcp: p.Type == "tcp"})
	}
	return bs
}

// publishedBindings are the bindings of a container's published ports.
func publishedBindings(ports []engineapi.Port) []binding {
	return slices.DeleteFunc(dockerBindings(ports), func(b binding) bool { return b.hostPort == 0 })
}

// containerAddress is the container's IPv4 address on --network, else on
// the first of its networks, by name, that gives it one; or why there is
// none.
func (d dockerSource) containerAddress(c engineapi.Summary) (ip, why string) {
	var networks map[string]*engineapi.EndpointSettings
	if c.NetworkSettings != nil {
		networks = c.NetworkSettings.Networks
	}
	if d.Network != "" {
		if n := networks[d.Network]; n != nil && n.IPAddress != "" {
			return n.IPAddress, ""
		}
		return "", fmt.Sprintf("no IPv4 address on network %s (--network)", d.Network)
	}
	for _, name := range slices.Sorted(maps.Keys(networks)) {
		if n := networks[name]; n != nil && n.IPAddress != "" {
			return n.IPAddress, ""
		}
	}
	return "", fmt.Sprintf("no IPv4 address on any network (network mode %s); --address container-ip needs one", c.HostConfig.NetworkMode)
}

// newTarget is a target of container c from its ECS labels.
func newTarget(c engineapi.Summary, privatePort, hostPort uint16) target {
	arn := c.Labels[labelTaskARN]
	return target{
		ContainerID:   c.ID,
		ContainerName: containerName(c),
		Created:       c.Created,
		Started:       c.Created,
		Family:        c.Labels[labelFamily],
		Revision:      c.Labels[labelRevision],
		ECSContainer:  c.Labels[labelContainerName],
		TaskARN:       arn,
		TaskID:        taskID(arn),
		ARN:           parseTaskARN(arn),
		Cluster:       c.Labels[labelCluster],
		LaunchType:    launchTypeEC2(arn),
		Labels:        c.Labels,
		Image:         c.Image,
		HostPort:      hostPort,
		PrivatePort:   privatePort,
		gap:           dockerGap,
	}
}

// dockerGap is why a container Docker lists has no value for a --key
// placeholder: the ECS label it comes from is missing.
func dockerGap(placeholder string) keyGap {
	label := map[string]string{"family": labelFamily, "revision": labelRevision, "container": labelContainerName, "task": labelTaskARN}[placeholder]
	switch {
	case placeholder == "port":
		return keyGap{why: "it publishes no host port for its container port"}
	case label != "":
		return keyGap{why: "it has no label " + label}
	}
	return keyGap{}
}

// awsvpcGap is dockerGap for the containers of awsvpc tasks, which never
// have a host port.
func awsvpcGap(placeholder string) keyGap {
	if placeholder == "port" {
		return keyGap{why: "awsvpc tasks publish no host port", kind: "awsvpc task", fix: "use --key '{family}-{slot}'"}
	}
	return dockerGap(placeholder)
}

// launchTypeEC2: a task found through a container instance's Docker runs on
// EC2 (Fargate gives no access to its Docker).
func launchTypeEC2(arn string) string {
	if arn == "" {
		return ""
	}
	return "EC2"
}

// hostFor is the address to reach a binding: --host, else the binding's
// own address when specific, else loopback of the binding's family
// (docker-proxy listens on :: for IPv6 only).
func (d dockerSource) hostFor(bindIP string) string {
	switch {
	case d.HostAddr != "":
		return d.HostAddr
	case bindIP == "::":
		return "::1"
	}
	ip := net.ParseIP(bindIP)
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}

func containerName(c engineapi.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.Labels[labelContainerName]
}

// explainDockerError turns a failed daemon call into one line naming the
// address, the time it had and the likely fix.
func explainDockerError(host string, timeout time.Duration, err error) error {
	var hint string
	switch {
	case errors.Is(err, fs.ErrPermission):
		hint = "permission denied: run as root or as a user in the docker group"
	case errors.Is(err, context.DeadlineExceeded):
		hint = fmt.Sprintf("no answer within %s: the daemon is hung or overloaded", timeout)
	case isConnectionFailed(err) && socketMissing(host):
		hint = "socket not found: is dockerd running? set --docker-host if it listens elsewhere"
	case isConnectionFailed(err):
		hint = "connection refused: is dockerd running? set --docker-host if it listens elsewhere"
	default:
		hint = oneLine(err.Error())
	}
	return fmt.Errorf("cannot list containers at %s: %s", host, hint)
}

// socketMissing tells whether host is a unix socket path that does not exist
// (the Docker client reports it as any other failed connection).
func socketMissing(host string) bool {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return false
	}
	_, err := os.Stat(path)
	return errors.Is(err, fs.ErrNotExist)
}

// containerEnv reads the OTel variables of each container id with
// ContainerInspect, at most concurrency at once: the service identity of
// serviceid.go. Of a container's environment only OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES are handed on; the rest is dropped here.
func (d dockerSource) containerEnv(ctx context.Context, ids []string, concurrency int) map[string]envResult {
	if d.engineErr != nil {
		out := make(map[string]envResult, len(ids))
		for _, id := range ids {
			out[id] = envResult{err: d.engineErr}
		}
		return out
	}
	return inspectEnvs(ctx, d.engine, ids, concurrency)
}

// containerInspector is the one Docker Engine call containerEnv makes.
type containerInspector interface {
	ContainerInspect(ctx context.Context, id string) (engineapi.InspectResponse, error)
}

// inspectEnvs inspects each container for its OTel variables.
func inspectEnvs(ctx context.Context, dc containerInspector, ids []string, concurrency int) map[string]envResult {
	return lookupEnvs(ctx, ids, concurrency, func(id string) envResult {
		c, err := dc.ContainerInspect(ctx, id)
		if err != nil {
			return envResult{err: errors.New(oneLine(err.Error()))}
		}
		if c.Config == nil {
			return envResult{}
		}
		return envResult{vars: otelVars(c.Config.Env)}
	})
}
