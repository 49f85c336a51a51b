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

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
)

// Labels the ECS agent puts on every container it starts.
const (
	labelFamily        = "com.amazonaws.ecs.task-definition-family"
	labelRevision      = "com.amazonaws.ecs.task-definition-version"
	labelContainerName = "com.amazonaws.ecs.container-name"
	labelTaskARN       = "com.amazonaws.ecs.task-arn"
)

// How targets are reached (--address).
const (
	addressHostPort    = "host-port"    // the published host port, through docker-proxy
	addressContainerIP = "container-ip" // the container's own address and private port
)

// defaultDockerHost is where the ECS-optimized AMIs' dockerd listens.
const defaultDockerHost = "unix:///var/run/docker.sock"

// Target is one TCP port of a running container: one stats endpoint to
// scrape. It carries what keys and warnings need.
type Target struct {
	ContainerID   string
	ContainerName string // the Docker container name
	Created       int64  // container creation, unix seconds
	Family        string // com.amazonaws.ecs.task-definition-family, "" outside ECS
	Revision      string // com.amazonaws.ecs.task-definition-version
	ECSContainer  string // com.amazonaws.ecs.container-name
	TaskID        string // last part of com.amazonaws.ecs.task-arn
	Host          string // address used to reach the port
	Port          uint16 // port used to reach it: HostPort or PrivatePort
	HostPort      uint16 // published host port, 0 when not published
	PrivatePort   uint16
	AWSVPC        bool // of an awsvpc task: reached at the task's own address, no host port
}

// ShortID is the 12-character container id docker ps shows.
func (t Target) ShortID() string { return shortID(t.ContainerID) }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Addr is host:port, with brackets for IPv6.
func (t Target) Addr() string {
	return net.JoinHostPort(t.Host, fmt.Sprint(t.Port))
}

// URL is the stats endpoint of the target.
func (t Target) URL(scheme, path string) string {
	return scheme + "://" + t.Addr() + path
}

// containerLister is the one Docker Engine call discovery needs.
type containerLister interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// Discovery selects the containers and ports to scrape.
type Discovery struct {
	Names         []string // docker ps --filter name=
	Labels        []string // docker ps --filter label=
	ContainerPort uint16   // 0: every published TCP port (every listed one with container-ip)
	Host          string   // "": the binding's HostIP when specific, else loopback (see hostFor)
	Address       string   // addressHostPort ("" too) or addressContainerIP
	Network       string   // container-ip: the network whose address is used ("": the first by name)
}

// Targets lists the running containers matching d with one ContainerList
// call (filters are applied by the daemon) and returns the targets sorted by
// host port (see targetsFrom), and a warning for each port skipped because
// another container already publishes it.
func (d Discovery) Targets(ctx context.Context, lister containerLister) ([]Target, []string, error) {
	f, err := d.find(ctx, lister)
	return f.targets, f.warnings, err
}

// find is Targets, with the containers of awsvpc tasks set apart (see
// splitAWSVPC): their addresses are asked of the ECS agent.
func (d Discovery) find(ctx context.Context, lister containerLister) (found, error) {
	args := filters.NewArgs(filters.Arg("status", "running"))
	for _, n := range d.Names {
		args.Add("name", n)
	}
	for _, l := range d.Labels {
		args.Add("label", l)
	}
	containers, err := lister.ContainerList(ctx, container.ListOptions{Filters: args})
	if err != nil {
		return found{}, err
	}
	containers, awsvpc := splitAWSVPC(containers)
	targets, warnings := d.targetsFrom(containers)
	return found{targets: targets, awsvpc: awsvpc, warnings: warnings}, nil
}

// targetsFrom turns a /containers/json answer into targets: one per
// published container TCP port, on its IPv4 binding when it has one (as the
// shell loop's `docker ps | cut` took it), else on its IPv6 one. UDP and
// unpublished ports are skipped. Metric keys name the host port, so a host
// port another container already publishes (on another host IP) is skipped
// with a warning.
func (d Discovery) targetsFrom(containers []container.Summary) (targets []Target, warnings []string) {
	if d.Address == addressContainerIP {
		return d.containerIPTargets(containers)
	}
	owner := map[uint16]string{}
	for _, c := range containers {
		name := containerName(c)
		for _, p := range d.bindings(c.Ports) {
			if first, ok := owner[p.PublicPort]; ok {
				warnings = append(warnings, fmt.Sprintf("host port %d of container %s skipped: container %s publishes it too", p.PublicPort, name, first))
				continue
			}
			owner[p.PublicPort] = name
			t := newTarget(c, p.PrivatePort, p.PublicPort)
			t.Host, t.Port = d.hostFor(p.IP), p.PublicPort
			targets = append(targets, t)
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].HostPort < targets[j].HostPort })
	return targets, warnings
}

// containerIPTargets reaches each container at its own address on its
// network and its private ports: --container-port, else every TCP port it
// lists. The published host port, when there is one, still names {port}.
func (d Discovery) containerIPTargets(containers []container.Summary) (targets []Target, warnings []string) {
	for _, c := range containers {
		ip, why := d.containerAddress(c)
		if ip == "" {
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: %s", containerName(c), shortID(c.ID), why))
			continue
		}
		published := map[uint16]uint16{} // private port -> host port
		for _, p := range (Discovery{}).bindings(c.Ports) {
			published[p.PrivatePort] = p.PublicPort
		}
		var ports []uint16
		if d.ContainerPort != 0 {
			ports = []uint16{d.ContainerPort}
		} else {
			seen := map[uint16]bool{}
			for _, p := range c.Ports {
				if p.Type == "tcp" && !seen[p.PrivatePort] {
					seen[p.PrivatePort] = true
					ports = append(ports, p.PrivatePort)
				}
			}
			slices.Sort(ports)
		}
		for _, port := range ports {
			t := newTarget(c, port, published[port])
			t.Host, t.Port = ip, port
			targets = append(targets, t)
		}
	}
	return targets, warnings
}

// containerAddress is the container's IPv4 address on --network, else on
// the first of its networks, by name, that gives it one; or why there is
// none.
func (d Discovery) containerAddress(c container.Summary) (ip, why string) {
	var networks map[string]*network.EndpointSettings
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

func newTarget(c container.Summary, privatePort, hostPort uint16) Target {
	arn := c.Labels[labelTaskARN]
	return Target{
		ContainerID:   c.ID,
		ContainerName: containerName(c),
		Created:       c.Created,
		Family:        c.Labels[labelFamily],
		Revision:      c.Labels[labelRevision],
		ECSContainer:  c.Labels[labelContainerName],
		TaskID:        arn[strings.LastIndex(arn, "/")+1:],
		HostPort:      hostPort,
		PrivatePort:   privatePort,
	}
}

// bindings picks one published binding per container TCP port, preferring
// IPv4: dockerd publishes a port on 0.0.0.0 and on :: (usually, not always,
// under the same host port number).
func (d Discovery) bindings(ports []container.Port) []container.Port {
	var picked []container.Port
	index := map[uint16]int{}
	for _, p := range ports {
		if p.Type != "tcp" || p.PublicPort == 0 || (d.ContainerPort != 0 && p.PrivatePort != d.ContainerPort) {
			continue
		}
		i, ok := index[p.PrivatePort]
		if !ok {
			index[p.PrivatePort] = len(picked)
			picked = append(picked, p)
		} else if isIPv6(picked[i].IP) && !isIPv6(p.IP) {
			picked[i] = p
		}
	}
	return picked
}

func isIPv6(ip string) bool {
	return strings.Contains(ip, ":")
}

// hostFor is the address to reach a binding: --host, else the binding's
// own address when specific, else loopback of the binding's family
// (docker-proxy listens on :: for IPv6 only).
func (d Discovery) hostFor(bindIP string) string {
	switch {
	case d.Host != "":
		return d.Host
	case bindIP == "::":
		return "::1"
	}
	ip := net.ParseIP(bindIP)
	if ip == nil || ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return ip.String()
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.Labels[labelContainerName]
}

// apiVersion is the Engine API version asked for first: dockerd 20.10 and
// later serve it, and naming it spares a version negotiation round trip on
// every run. A daemon that refuses it (Docker 29 serves 1.44 and later only)
// is asked again after negotiating.
const apiVersion = "1.41"

// Discover lists the targets at the Docker daemon at host (unix:// or
// tcp://); every call is bounded by timeout and ctx. The error is one line
// naming host and the likely fix.
func (d Discovery) Discover(ctx context.Context, host string, timeout time.Duration) (found, error) {
	f, err := d.discoverWith(ctx, host, timeout, client.WithVersion(apiVersion))
	if err != nil && strings.Contains(err.Error(), "client version "+apiVersion+" is too") {
		f, err = d.discoverWith(ctx, host, timeout, client.WithAPIVersionNegotiation())
	}
	if err != nil {
		return found{}, explainDockerError(host, err)
	}
	return f, nil
}

func (d Discovery) discoverWith(ctx context.Context, host string, timeout time.Duration, version client.Opt) (found, error) {
	dc, err := client.NewClientWithOpts(client.WithHost(host), client.WithTimeout(timeout), version)
	if err != nil {
		return found{}, err
	}
	defer dc.Close()
	return d.find(ctx, dc)
}

// explainDockerError turns a failed daemon call into one line naming the
// address and the likely fix.
func explainDockerError(host string, err error) error {
	var hint string
	switch {
	case errors.Is(err, fs.ErrPermission):
		hint = "permission denied: run as root or as a user in the docker group"
	case errors.Is(err, context.DeadlineExceeded):
		hint = "no answer in time: the daemon is hung or overloaded"
	case client.IsErrConnectionFailed(err) && socketMissing(host):
		hint = "socket not found: is dockerd running? set --docker-host if it listens elsewhere"
	case client.IsErrConnectionFailed(err):
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

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// identity tells targets apart across runs: a container and its port. A
// task replaced by another (even on the same host port) is another target.
func (t Target) identity() string {
	return fmt.Sprintf("%s:%d", t.ContainerID, t.PrivatePort)
}
