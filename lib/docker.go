package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
)

// Labels the ECS agent puts on every container it starts.
const (
	labelFamily        = "com.amazonaws.ecs.task-definition-family"
	labelContainerName = "com.amazonaws.ecs.container-name"
)

// defaultDockerHost is where the ECS-optimized AMIs' dockerd listens.
const defaultDockerHost = "unix:///var/run/docker.sock"

// Target is one published host port of a running container: one stats
// endpoint to scrape.
type Target struct {
	ContainerID   string
	ContainerName string
	Family        string // com.amazonaws.ecs.task-definition-family, "" outside ECS
	Host          string // address used to reach the port
	HostPort      uint16
	PrivatePort   uint16
}

// ShortID is the 12-character container id docker ps shows.
func (t Target) ShortID() string {
	if len(t.ContainerID) > 12 {
		return t.ContainerID[:12]
	}
	return t.ContainerID
}

// Addr is host:port, with brackets for IPv6.
func (t Target) Addr() string {
	return net.JoinHostPort(t.Host, fmt.Sprint(t.HostPort))
}

// containerLister is the one Docker Engine call discovery needs.
type containerLister interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
}

// Discovery selects the containers and ports to scrape.
type Discovery struct {
	Names         []string // docker ps --filter name=
	Labels        []string // docker ps --filter label=
	ContainerPort uint16   // 0: every published TCP port
	Host          string   // "": the binding's HostIP when specific, else 127.0.0.1
}

// Targets lists the running containers matching d with one ContainerList
// call (filters are applied by the daemon) and returns one target per
// distinct published host TCP port, sorted by host port.
func (d Discovery) Targets(ctx context.Context, lister containerLister) ([]Target, error) {
	args := filters.NewArgs(filters.Arg("status", "running"))
	for _, n := range d.Names {
		args.Add("name", n)
	}
	for _, l := range d.Labels {
		args.Add("label", l)
	}
	containers, err := lister.ContainerList(ctx, container.ListOptions{Filters: args})
	if err != nil {
		return nil, err
	}
	return d.targetsFrom(containers), nil
}

// targetsFrom turns a /containers/json answer into targets. A port bound on
// both 0.0.0.0 and :: is one target; UDP and unpublished ports are skipped.
func (d Discovery) targetsFrom(containers []container.Summary) []Target {
	var targets []Target
	seen := map[uint16]bool{}
	for _, c := range containers {
		for _, p := range c.Ports {
			if p.Type != "tcp" || p.PublicPort == 0 || seen[p.PublicPort] {
				continue
			}
			if d.ContainerPort != 0 && p.PrivatePort != d.ContainerPort {
				continue
			}
			seen[p.PublicPort] = true
			targets = append(targets, Target{
				ContainerID:   c.ID,
				ContainerName: containerName(c),
				Family:        c.Labels[labelFamily],
				Host:          d.hostFor(p.IP),
				HostPort:      p.PublicPort,
				PrivatePort:   p.PrivatePort,
			})
		}
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].HostPort < targets[j].HostPort })
	return targets
}

func (d Discovery) hostFor(bindIP string) string {
	if d.Host != "" {
		return d.Host
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

// newDockerClient connects to host (unix:// or tcp://). Every call is
// bounded by timeout, including the API version negotiation.
func newDockerClient(host string, timeout time.Duration) (*client.Client, error) {
	return client.NewClientWithOpts(
		client.WithHost(host),
		client.WithTimeout(timeout),
		client.WithAPIVersionNegotiation(),
	)
}

// explainDockerError turns a failed daemon call into one line naming the
// address and the likely fix.
func explainDockerError(host string, err error) error {
	var hint string
	switch {
	case errors.Is(err, fs.ErrPermission):
		hint = "permission denied: run as root or as a user in the docker group"
	case errors.Is(err, fs.ErrNotExist):
		hint = "socket not found: is dockerd running? set --docker-host if it listens elsewhere"
	case errors.Is(err, syscall.ECONNREFUSED):
		hint = "connection refused: is dockerd running? set --docker-host if it listens elsewhere"
	case errors.Is(err, context.DeadlineExceeded):
		hint = "no answer in time: the daemon is hung or overloaded"
	default:
		hint = oneLine(err.Error())
	}
	return fmt.Errorf("cannot list containers at %s: %s", host, hint)
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
