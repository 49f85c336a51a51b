package mpecsgostats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
)

// The ECS sources: the task metadata endpoint (--source task-metadata), for
// a plugin run beside a task's containers, such as by mackerel-container-agent
// on Fargate; and the ECS agent's introspection API, which knows the addresses
// of the awsvpc tasks on an EC2 container instance.

// Where targets are found (--source).
const (
	sourceDocker       = "docker"        // the Docker daemon's container list on this instance
	sourceTaskMetadata = "task-metadata" // the containers of the task this process runs in
)

// envTaskMetadata is the variable ECS sets in every container of a task (ECS
// agent 1.39.0 and later on EC2, platform 1.4.0 and later on Fargate).
const envTaskMetadata = "ECS_CONTAINER_METADATA_URI_V4"

// maxECSBodyBytes bounds an answer of the task metadata endpoint or the ECS
// agent (a task's metadata is a few KiB; the agent's task list about 1 KiB a
// task).
const maxECSBodyBytes = 8 << 20

// httpDoer is the one HTTP call the ECS sources make.
type httpDoer interface {
	Do(req *http.Request) (*http.Response, error)
}

// getJSON GETs url and decodes its answer into v: anything but a 200 with one
// JSON value of at most maxECSBodyBytes is an error, which does not name the
// URL (the caller does).
func getJSON(ctx context.Context, hc httpDoer, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", pluginName)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unexpected status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxECSBodyBytes+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxECSBodyBytes {
		return fmt.Errorf("answer exceeds %d bytes", maxECSBodyBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("invalid answer: %w", err)
	}
	return nil
}

// httpCause is the cause of a failed getJSON in a few words, and whether it
// is a connection that was refused or never answered.
func httpCause(err error, timeout time.Duration) (cause string, refused bool) {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return fmt.Sprintf("no answer within %s", timeout), false
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused", true
	}
	return oneLine(err.Error()), false
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// ecsPort is a port of a container in the task metadata and the ECS agent's
// answers.
type ecsPort struct {
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"; "" is tcp
	HostPort      uint16 // in awsvpc, the container port
	HostIp        string
}

// ecsNetwork is a network of a container in the task metadata and the ECS
// agent's answers.
type ecsNetwork struct {
	NetworkMode   string // awsvpc, bridge, host
	IPv4Addresses []string
}

// taskMetadata is the part of a task metadata v4 answer (GET
// ${ECS_CONTAINER_METADATA_URI_V4}/task) the plugin reads.
type taskMetadata struct {
	Cluster     string
	TaskARN     string
	Family      string
	Revision    string
	KnownStatus string
	LaunchType  string
	Containers  []struct {
		DockerId    string
		Name        string // in the task definition
		DockerName  string
		Labels      map[string]string
		KnownStatus string
		Type        string // NORMAL; CNI_PAUSE for the pause container of an awsvpc task on EC2
		CreatedAt   *time.Time
		Ports       []ecsPort
		Networks    []ecsNetwork
	}
}

// TaskMetadata finds the targets of --source task-metadata: the containers of
// the task the plugin runs in, as the task metadata endpoint lists them.
type TaskMetadata struct {
	URL           string   // the endpoint's base URL, ECS_CONTAINER_METADATA_URI_V4
	Names         []string // regular expressions, as docker ps --filter name=
	Labels        []string // KEY or KEY=VALUE, as docker ps --filter label=
	ContainerPort uint16   // 0: every TCP port a container lists
}

// TaskURL is the URL asked: the task's metadata.
func (s TaskMetadata) TaskURL() string {
	return strings.TrimSuffix(s.URL, "/") + "/task"
}

// Targets asks the endpoint once and returns the targets: every running
// container of type NORMAL that matches the filters, at each TCP port it
// lists (--container-port: that port only). In an awsvpc task (all of
// Fargate) the task's containers share one network namespace, so they are
// reached at 127.0.0.1; in other modes at the container's own address. The
// error is one line naming the URL.
func (s TaskMetadata) Targets(ctx context.Context, hc httpDoer, timeout time.Duration) ([]Target, []string, error) {
	var md taskMetadata
	if err := getJSON(ctx, hc, s.TaskURL(), &md); err != nil {
		cause, refused := httpCause(err, timeout)
		if refused {
			cause += ": the endpoint is reached only from inside an ECS task; set --task-metadata-url if it is elsewhere"
		}
		return nil, nil, fmt.Errorf("cannot read task metadata at %s: %s", s.TaskURL(), cause)
	}
	if md.TaskARN == "" && len(md.Containers) == 0 {
		return nil, nil, fmt.Errorf("cannot read task metadata at %s: no TaskARN and no Containers: not a task metadata v4 answer", s.TaskURL())
	}
	names, err := compileNames(s.Names)
	if err != nil {
		return nil, nil, err
	}

	var targets []Target
	var warnings []string
	for _, c := range md.Containers {
		if c.Type != "NORMAL" || c.KnownStatus != "RUNNING" {
			continue
		}
		if !matchName(names, c.DockerName, c.Name) || !matchLabels(s.Labels, c.Labels) {
			continue
		}
		ports := s.ports(c.Ports)
		if len(ports) == 0 {
			continue // a sidecar without ports, such as the agent itself
		}
		host, mode := "", ""
		for _, n := range c.Networks {
			mode = n.NetworkMode
			if mode == "awsvpc" || mode == "host" {
				host = "127.0.0.1"
			} else if len(n.IPv4Addresses) > 0 {
				host = n.IPv4Addresses[0]
			}
			if host != "" {
				break
			}
		}
		name := c.DockerName
		if name == "" {
			name = c.Name
		}
		if host == "" {
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: the task metadata at %s gives it no IPv4 address (network mode %q)",
				name, shortID(c.DockerId), s.TaskURL(), mode))
			continue
		}
		var created int64
		if c.CreatedAt != nil {
			created = c.CreatedAt.Unix()
		}
		for _, p := range ports {
			t := Target{
				ContainerID:   c.DockerId,
				ContainerName: name,
				Created:       created,
				Family:        md.Family,
				Revision:      md.Revision,
				ECSContainer:  c.Name,
				TaskID:        md.TaskARN[strings.LastIndex(md.TaskARN, "/")+1:],
				Host:          host,
				Port:          p.ContainerPort,
				PrivatePort:   p.ContainerPort,
				AWSVPC:        mode == "awsvpc",
			}
			if mode != "awsvpc" && mode != "host" {
				t.HostPort = p.HostPort // a published port; in awsvpc the agent repeats the container port
			}
			targets = append(targets, t)
		}
	}
	return targets, warnings, nil
}

// ports are the TCP ports to scrape of those a container lists, each once
// (a port published on IPv4 and IPv6 is listed twice), the IPv4 binding's
// host port kept: --container-port only, else all, in order.
func (s TaskMetadata) ports(listed []ecsPort) []ecsPort {
	var out []ecsPort
	for _, p := range listed {
		if p.Protocol != "" && p.Protocol != "tcp" || s.ContainerPort != 0 && p.ContainerPort != s.ContainerPort {
			continue
		}
		i := slices.IndexFunc(out, func(q ecsPort) bool { return q.ContainerPort == p.ContainerPort })
		switch {
		case i < 0:
			out = append(out, p)
		case isIPv6(out[i].HostIp) && !isIPv6(p.HostIp):
			out[i] = p
		}
	}
	slices.SortStableFunc(out, func(a, b ecsPort) int { return int(a.ContainerPort) - int(b.ContainerPort) })
	return out
}

// compileNames compiles --name values for the sources that filter names
// themselves; dockerd matches them the same way (see matchName).
func compileNames(names []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, n := range names {
		re, err := regexp.Compile(n)
		if err != nil {
			return nil, fmt.Errorf("--name %q: not a regular expression: %v", n, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// matchName tells whether any of the names matches any of the patterns, as
// dockerd's name filter does: the whole name or a regular expression match,
// with or without a leading "/". No patterns match everything.
func matchName(patterns []*regexp.Regexp, names ...string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, re := range patterns {
		for _, n := range names {
			if n != "" && (re.String() == n || re.MatchString(n) || re.MatchString("/"+n)) {
				return true
			}
		}
	}
	return false
}

// matchLabels tells whether labels has every filter, KEY (present) or
// KEY=VALUE, as dockerd's label filter does.
func matchLabels(filters []string, labels map[string]string) bool {
	for _, f := range filters {
		k, v, withValue := strings.Cut(f, "=")
		got, ok := labels[k]
		if !ok || withValue && got != v {
			return false
		}
	}
	return true
}

// pauseContainerName is the com.amazonaws.ecs.container-name of the pause
// container the ECS agent starts for each awsvpc task to hold its network
// namespace. It is never a target.
const pauseContainerName = "~internal~ecs~pause"

// splitAWSVPC sets apart the containers of awsvpc tasks in a /containers/json
// answer: ECS containers in the network namespace of another (NetworkMode
// container:<pause id>), which Docker shows with no address and no ports.
// Pause containers are left out of both.
func splitAWSVPC(containers []container.Summary) (others, awsvpc []container.Summary) {
	for _, c := range containers {
		switch {
		case c.Labels[labelContainerName] == pauseContainerName:
		case c.Labels[labelTaskARN] != "" && strings.HasPrefix(c.HostConfig.NetworkMode, "container:"):
			awsvpc = append(awsvpc, c)
		default:
			others = append(others, c)
		}
	}
	return others, awsvpc
}

// agentTasks is the part of the ECS agent's GET /v1/tasks answer the plugin
// reads. A task stays listed, STOPPED, until the agent cleans it up.
type agentTasks struct {
	Tasks []struct {
		Arn         string
		KnownStatus string
		Family      string
		Version     string
		Containers  []struct {
			DockerId   string
			DockerName string
			Name       string
			Ports      []ecsPort    // in awsvpc, HostPort repeats ContainerPort
			Networks   []ecsNetwork // awsvpc tasks only: the task's ENI
		}
	}
}

// ECSAgent gives awsvpc task containers their addresses, from the ECS
// agent's introspection API.
type ECSAgent struct {
	URL           string // http://127.0.0.1:51678 on an ECS container instance
	ContainerPort uint16 // 0: every TCP port the agent lists for a container
}

// TasksURL is the URL asked: every task the agent knows.
func (a ECSAgent) TasksURL() string {
	return strings.TrimSuffix(a.URL, "/") + "/v1/tasks"
}

// Targets asks the agent once for its tasks and makes a target of each of
// containers (the awsvpc task containers Docker listed, see splitAWSVPC),
// matched by DockerId, at its task's first IPv4 address and each TCP port
// the agent lists for it (--container-port: that one only; the containers of
// a task share one address, so a port a container does not list is another
// container's). Containers of a task the agent does not know as
// RUNNING (starting, or stopped) are left out. It returns warnings, and an
// error when the agent cannot be asked: one line naming the URL, which costs
// the awsvpc tasks (a warning and a discovery error), not the run.
func (a ECSAgent) Targets(ctx context.Context, hc httpDoer, timeout time.Duration, containers []container.Summary) ([]Target, []string, error) {
	var names []string
	for _, c := range containers {
		names = append(names, containerName(c))
	}
	var tasks agentTasks
	if err := getJSON(ctx, hc, a.TasksURL(), &tasks); err != nil {
		cause, refused := httpCause(err, timeout)
		switch {
		case refused:
			cause += ": is the ECS agent running with its introspection API? from inside a container, set --ecs-agent-url to an address of the host"
		case strings.HasPrefix(cause, "no answer"):
			cause += ": the ECS agent is hung or overloaded"
		default:
			cause += ": is --ecs-agent-url the ECS agent's introspection API?"
		}
		return nil, nil, fmt.Errorf("%d awsvpc task containers skipped (%s): cannot list the ECS agent's tasks at %s: %s",
			len(containers), abbreviate(names, 3), a.TasksURL(), cause)
	}

	type known struct {
		running bool
		addr    string // the task's first IPv4 address
		ports   []ecsPort
	}
	byID := map[string]known{}
	for _, task := range tasks.Tasks {
		var addr string
		for _, c := range task.Containers {
			for _, n := range c.Networks {
				if addr == "" && n.NetworkMode == "awsvpc" && len(n.IPv4Addresses) > 0 {
					addr = n.IPv4Addresses[0]
				}
			}
		}
		for _, c := range task.Containers {
			byID[c.DockerId] = known{running: task.KnownStatus == "RUNNING", addr: addr, ports: c.Ports}
		}
	}

	var targets []Target
	var warnings []string
	for _, c := range containers {
		k, listed := byID[c.ID]
		switch {
		case !listed:
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: the ECS agent at %s does not list it", containerName(c), shortID(c.ID), a.TasksURL()))
			continue
		case !k.running:
			continue
		case k.addr == "":
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: the ECS agent at %s lists no awsvpc address for its task", containerName(c), shortID(c.ID), a.TasksURL()))
			continue
		}
		for _, p := range (TaskMetadata{ContainerPort: a.ContainerPort}).ports(k.ports) {
			t := newTarget(c, p.ContainerPort, 0)
			t.Host, t.Port, t.AWSVPC = k.addr, p.ContainerPort, true
			targets = append(targets, t)
		}
	}
	return targets, warnings, nil
}
