package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/otelenv"
)

// Service identity: the service.name (and service.namespace,
// deployment.environment.name) a target's series are labeled with, where
// the service says it. Per target, the first found wins:
//
//  1. the container's gostats.service.name label;
//  2. the container's own OTEL_SERVICE_NAME;
//  3. service.name in the container's own OTEL_RESOURCE_ATTRIBUTES;
//  4. the task definition family;
//  5. the container name.
//
// service.namespace and deployment.environment.name come from the
// container's OTEL_RESOURCE_ATTRIBUTES only. A container's environment is
// read (by a source that can: Docker's inspect) only when an output labels
// series, once per container id: what was found, or that nothing was, is
// remembered in the state file. Only these values are ever kept: the
// environment often holds secrets, and nothing else of it is stored or
// printed.

// labelServiceName names a container's service. Unlike the other gostats.*
// labels it does not opt a container in under --opt-in.
const labelServiceName = "gostats.service.name"

// Where a service name came from, as --list says it.
const (
	serviceFromLabel      = "label"
	serviceFromEnvName    = "OTEL_SERVICE_NAME"
	serviceFromEnvAttrs   = "OTEL_RESOURCE_ATTRIBUTES"
	serviceFromFamily     = "family"
	serviceFromContainer  = "container name"
	envServiceName        = "OTEL_SERVICE_NAME"
	attrServiceName       = "service.name"
	attrServiceNamespace  = "service.namespace"
	attrDeploymentEnvName = "deployment.environment.name"
)

// serviceEnv is what a container's environment says of its service: the
// state file keeps it per container id. The zero value is "nothing".
type serviceEnv struct {
	Name      string `json:"name,omitempty"`
	From      string `json:"from,omitempty"` // serviceFromEnvName or serviceFromEnvAttrs, with Name
	Namespace string `json:"namespace,omitempty"`
	Env       string `json:"env,omitempty"` // deployment.environment.name
}

// containerEnvVars are the only variables of a container's environment a
// source hands on: the values of OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES, each with whether it is set.
type containerEnvVars struct {
	serviceName, resourceAttrs       string
	hasServiceName, hasResourceAttrs bool
}

// otelVars picks the two variables out of an environment (KEY=VALUE
// entries); nothing else of it is kept.
func otelVars(env []string) containerEnvVars {
	var v containerEnvVars
	for _, e := range env {
		switch k, val, _ := strings.Cut(e, "="); k {
		case envServiceName:
			v.serviceName, v.hasServiceName = val, true
		case otelenv.ResourceAttributesVar:
			v.resourceAttrs, v.hasResourceAttrs = val, true
		}
	}
	return v
}

// serviceEnvOf is what the variables say; malformed: the container's
// OTEL_RESOURCE_ATTRIBUTES is not a valid list, and was ignored whole.
func serviceEnvOf(v containerEnvVars) (s serviceEnv, malformed bool) {
	if v.hasResourceAttrs {
		attrs, err := otelenv.ParseResourceAttributes(v.resourceAttrs)
		if err != nil {
			malformed = true
		}
		for _, a := range attrs {
			switch a.Key {
			case attrServiceName:
				if a.Value != "" {
					s.Name, s.From = a.Value, serviceFromEnvAttrs
				}
			case attrServiceNamespace:
				s.Namespace = a.Value
			case attrDeploymentEnvName:
				s.Env = a.Value
			}
		}
	}
	if v.hasServiceName && v.serviceName != "" {
		s.Name, s.From = v.serviceName, serviceFromEnvName
	}
	return s, malformed
}

// service is a target's service identity, and where its name came from.
type service struct {
	name, from     string
	namespace, env string
}

// serviceOf is the service of t: env is what its container's environment
// said (nil when it was not read).
func serviceOf(t target, env *serviceEnv) service {
	var s service
	if env != nil {
		s.namespace, s.env = env.Namespace, env.Env
	}
	switch {
	case t.Labels[labelServiceName] != "":
		s.name, s.from = t.Labels[labelServiceName], serviceFromLabel
	case env != nil && env.Name != "":
		s.name, s.from = env.Name, env.From
	case t.Family != "":
		s.name, s.from = t.Family, serviceFromFamily
	default:
		s.name, s.from = t.ECSContainer, serviceFromContainer
		if s.name == "" {
			s.name = t.ContainerName
		}
	}
	return s
}

// containerEnver is what a source that can read its containers'
// environment implements: the two OTel variables of each container id
// asked, or why they could not be read. It asks at most concurrency at
// once, and gives up at ctx's end.
type containerEnver interface {
	containerEnv(ctx context.Context, ids []string, concurrency int) map[string]envResult
}

// envResult is one container's OTel variables, or why there are none.
type envResult struct {
	vars containerEnvVars
	err  error // one line, without the container's name
}

// serviceLookup reads the environment of the containers not known from
// the last runs: a measurement-time kind (measure.go).
type serviceLookup struct {
	enver       containerEnver
	concurrency int
	known       map[string]serviceEnv // the state's, by container id
}

// serviceLookups are a run's service identities: each container's, by id,
// for those whose environment is known (read this run, or remembered).
type serviceLookups struct {
	envs     map[string]serviceEnv
	warnings []string
}

// lookup gives each target's container its environment's service
// identity: remembered, else read now. A container that could not be read
// has none (its family stands in) and is read again at the next run.
func (l *serviceLookup) lookup(ctx context.Context, targets []keyed) serviceLookups {
	out := serviceLookups{envs: map[string]serviceEnv{}}
	var ask []string
	names := map[string]string{}
	for _, k := range targets {
		id := k.target.ContainerID
		if id == "" {
			continue
		}
		if _, seen := names[id]; seen {
			continue
		}
		names[id] = k.target.ContainerName
		if s, ok := l.known[id]; ok {
			out.envs[id] = s
			continue
		}
		ask = append(ask, id)
	}
	if len(ask) == 0 {
		return out
	}
	got := l.enver.containerEnv(ctx, ask, l.concurrency)
	for _, id := range ask {
		r, ok := got[id]
		if !ok {
			r.err = errors.New("not asked")
		}
		if r.err != nil {
			out.warnings = append(out.warnings, fmt.Sprintf("service.name of container %s %s: cannot read its environment (%s); its family stands in until a run can",
				names[id], shortID(id), r.err))
			continue
		}
		s, malformed := serviceEnvOf(r.vars)
		if malformed {
			out.warnings = append(out.warnings, fmt.Sprintf("container %s %s: its %s is malformed, ignored whole (see the OpenTelemetry specification: key=value pairs, comma-separated, percent-encoded)",
				names[id], shortID(id), otelenv.ResourceAttributesVar))
		}
		out.envs[id] = s
	}
	return out
}

// lookupEnvs runs fn for each id, at most concurrency at once; an id whose
// turn comes after ctx ended is not asked.
func lookupEnvs(ctx context.Context, ids []string, concurrency int, fn func(id string) envResult) map[string]envResult {
	out := make(map[string]envResult, len(ids))
	var mu sync.Mutex
	put := func(id string, r envResult) {
		mu.Lock()
		out[id] = r
		mu.Unlock()
	}
	inTurns(ctx, len(ids), concurrency, func(i int) { put(ids[i], fn(ids[i])) },
		func(i int) { put(ids[i], envResult{err: errNotAsked}) })
	return out
}
