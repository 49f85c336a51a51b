package mpecsgostats

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// A source finds this run's targets. It never prints and never exits: what
// it passes over, and why, comes back with the targets. A source that holds
// connections for the run (a client of its API) is also an io.Closer: run
// closes it at the end.
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

// labelled applies a container's labels (labels.go) to the container ports
// the flags select (want, 0 for all) of those listed: pass is why the
// container is not scraped at all; else the ports to scrape, the settings to
// give their targets, and bad, a label's bad value. A gostats.port label
// names the one port, listed or not (awsvpc and task metadata targets need
// no portMappings); needListed says that only a listed port can be reached
// (published host ports).
func labelled(labels map[string]string, formats formatList, optIn bool, listed []binding, want uint16, needListed bool) (pass string, ports []binding, s settings) {
	s = labelSettings(labels, formats)
	if ok, why := s.selected(optIn); !ok {
		return why, nil, s
	}
	if s.err != nil {
		return "", nil, s
	}
	if s.port == 0 {
		return "", pickBindings(listed, want), s
	}
	ports = pickBindings(listed, s.port)
	switch {
	case len(ports) == 0 && needListed:
		label := labelPort
		if _, ok := labels[labelPort]; !ok {
			label = labelPromPort
		}
		s.err = fmt.Errorf("label %s=%d: the container does not publish container port %d, and targets are reached at their published host port; publish it (portMappings), or use --address container-ip",
			label, s.port, s.port)
	case len(ports) == 0:
		ports = []binding{{containerPort: s.port, tcp: true}}
	}
	return "", ports, s
}

// withSettings gives t the label settings s.
func (t target) withSettings(s settings) target {
	t.Path, t.format, t.bad = s.path, s.format, s.err
	return t
}

// sourceKind is a --source value and how to make its source.
type sourceKind struct {
	name string
	open func(opts options, env sourceEnv) source
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
