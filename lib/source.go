package mpecsgostats

import (
	"context"
	"net/http"
	"slices"
	"strings"
)

// A source finds this run's targets. It never prints and never exits: what
// it passes over, and why, comes back with the targets.
type source interface {
	// discover returns the targets of this run. An error means discovery
	// failed as a whole (the run reports nothing); a lookup that failed for
	// some targets only is a warning and counts in found.errors.
	discover(ctx context.Context) (found, error)
}

// found is what a source found.
type found struct {
	targets  []target
	passed   []passedOver // containers that are no target, for --list
	warnings []string
	errors   int // discovery calls that failed without failing the run (the ECS agent's)
}

// passedOver is a container that is not scraped, and why. It is shown by
// --list only: sidecars without ports and pause containers are there every
// minute, and are no reason for a warning.
type passedOver struct {
	name, id string
	why      string
}

// newSource is the source --source names.
func newSource(opts options, hc *http.Client) source {
	if opts.Source == sourceTaskMetadata {
		return taskMetadataSource{URL: opts.TaskMetadataURL, Names: opts.Names, Labels: opts.Labels,
			ContainerPort: opts.ContainerPort, hc: hc, timeout: opts.Timeout}
	}
	return dockerSource{Host: opts.DockerHost, Names: opts.Names, Labels: opts.Labels, ContainerPort: opts.ContainerPort,
		HostAddr: opts.Host, Address: opts.Address, Network: opts.Network, Timeout: opts.Timeout,
		agent: ecsAgent{URL: opts.ECSAgentURL, ContainerPort: opts.ContainerPort, hc: hc, timeout: opts.Timeout / 2}}
}

// binding is one port a container lists: Docker's and the ECS APIs' shapes
// of it alike.
type binding struct {
	containerPort uint16
	hostPort      uint16 // 0: not published
	hostIP        string
	tcp           bool
}

// pickBindings keeps the TCP bindings (of containerPort only, when not 0),
// one per container port, preferring IPv4: dockerd publishes a port on
// 0.0.0.0 and on :: (usually, not always, under the same host port number).
// They come sorted by container port.
func pickBindings(bs []binding, containerPort uint16) []binding {
	var picked []binding
	for _, b := range bs {
		if !b.tcp || containerPort != 0 && b.containerPort != containerPort {
			continue
		}
		i := slices.IndexFunc(picked, func(p binding) bool { return p.containerPort == b.containerPort })
		switch {
		case i < 0:
			picked = append(picked, b)
		case isIPv6(picked[i].hostIP) && !isIPv6(b.hostIP):
			picked[i] = b
		}
	}
	slices.SortStableFunc(picked, func(a, b binding) int { return int(a.containerPort) - int(b.containerPort) })
	return picked
}

func isIPv6(ip string) bool {
	return strings.Contains(ip, ":")
}
