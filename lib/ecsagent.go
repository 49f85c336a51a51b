package mpecsgostats

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// The ECS agent's introspection API, which knows the addresses of the
// awsvpc tasks on an EC2 container instance: the Docker source asks it once
// a run, when Docker lists awsvpc task containers.

// ecsAgent gives awsvpc task containers their addresses.
type ecsAgent struct {
	URL           string // http://127.0.0.1:51678 on an ECS container instance
	ContainerPort uint16 // 0: every TCP port the agent lists for a container
	OptIn         bool   // only containers with a gostats.* or CloudWatch label
	hc            httpDoer
	// timeout bounds the lookup: half the time the run gives discovery and
	// the scrapes, so a hung agent leaves the scrapes the other half.
	timeout time.Duration
	formats formatList // what a gostats.format label may name
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

// instanceARN asks the agent (GET /v1/metadata) for its container
// instance's ARN, within its timeout; refused tells a connection refused.
func (a ecsAgent) instanceARN(ctx context.Context) (arn string, refused bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	url := strings.TrimSuffix(a.URL, "/") + "/v1/metadata"
	var md struct{ ContainerInstanceArn string }
	if err := getJSON(ctx, a.hc, url, &md); err != nil {
		cause, refused := httpCause(err, a.timeout)
		return "", refused, fmt.Errorf("cannot read the ECS agent's metadata at %s: %s", url, cause)
	}
	return md.ContainerInstanceArn, false, nil
}

// tasksURL is the URL asked: every task the agent knows.
func (a ecsAgent) tasksURL() string {
	return strings.TrimSuffix(a.URL, "/") + "/v1/tasks"
}

// targets asks the agent once for its tasks and makes a target of each of
// containers (awsvpc task containers Docker listed), matched by DockerId, at
// its task's first IPv4 address and each TCP port the agent lists for it
// (--container-port: that one only; the containers of a task share one
// address, so a port a container does not list is another container's).
// Containers of a task the agent does not know as RUNNING (starting, or
// stopped) are passed over. The error, when the agent cannot be asked
// within its timeout, is one line naming the URL and the containers it
// costs.
func (a ecsAgent) targets(ctx context.Context, containers []engineapi.Summary) (targets []target, passed []passedOver, warnings []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	var tasks agentTasks
	if err := getJSON(ctx, a.hc, a.tasksURL(), &tasks); err != nil {
		var names []string
		for _, c := range containers {
			names = append(names, containerName(c))
		}
		cause, refused := httpCause(err, a.timeout)
		switch {
		case refused:
			cause += ": is the ECS agent running with its introspection API? from inside a container, set --ecs-agent-url to an address of the host"
		case strings.HasPrefix(cause, "no answer"):
			cause += ": the ECS agent is hung or overloaded"
		default:
			cause += ": is --ecs-agent-url the ECS agent's introspection API?"
		}
		return nil, nil, nil, fmt.Errorf("%d awsvpc task containers skipped (%s): cannot list the ECS agent's tasks at %s: %s",
			len(containers), abbreviate(names, 3), a.tasksURL(), cause)
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

	for _, c := range containers {
		k, listed := byID[c.ID]
		switch {
		case !listed:
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: the ECS agent at %s does not list it", containerName(c), shortID(c.ID), a.tasksURL()))
			continue
		case !k.running:
			passed = append(passed, passedOver{containerName(c), c.ID, "its task is not RUNNING for the ECS agent"})
			continue
		case k.addr == "":
			warnings = append(warnings, fmt.Sprintf("container %s %s skipped: the ECS agent at %s lists no awsvpc address for its task", containerName(c), shortID(c.ID), a.tasksURL()))
			continue
		}
		pass, ports, s := labelled(c.Labels, a.formats, a.OptIn, ecsBindings(k.ports), a.ContainerPort, false)
		switch {
		case pass != "":
			passed = append(passed, passedOver{containerName(c), c.ID, pass})
			continue
		case s.err != nil:
			targets = append(targets, newTarget(c, s.port, 0).withSettings(s))
			continue
		case len(ports) == 0:
			passed = append(passed, passedOver{containerName(c), c.ID, "the ECS agent lists no TCP port for it"})
		}
		for _, p := range ports {
			t := newTarget(c, p.containerPort, 0).withSettings(s)
			t.Host, t.Port, t.AWSVPC, t.gap = k.addr, p.containerPort, true, awsvpcGap
			targets = append(targets, t)
		}
	}
	return targets, passed, warnings, nil
}
