package mpecsgostats

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// The task metadata source (--source task-metadata): the containers of the
// task the plugin runs in, from the ECS task metadata endpoint (v4), for a
// plugin run beside them, such as by mackerel-container-agent on Fargate.

// envTaskMetadata is the variable ECS sets in every container of a task (ECS
// agent 1.39.0 and later on EC2, platform 1.4.0 and later on Fargate).
const envTaskMetadata = "ECS_CONTAINER_METADATA_URI_V4"

// ecsPort is a port of a container in the task metadata and the ECS agent's
// answers.
type ecsPort struct {
	ContainerPort uint16
	Protocol      string // "tcp" or "udp"; "" is tcp
	HostPort      uint16 // in awsvpc, the container port
	HostIp        string
}

func ecsBindings(ports []ecsPort) []binding {
	bs := make([]binding, 0, len(ports))
	for _, p := range ports {
		bs = append(bs, binding{containerPort: p.ContainerPort, hostPort: p.HostPort, hostIP: p.HostIp, tcp: p.Protocol == "" || p.Protocol == "tcp"})
	}
	return bs
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
	// AvailabilityZone: ECS agent 1.39.0 and later, Fargate 1.4.0 and later
	AvailabilityZone string
	// Limits: the task's, when the task definition sets task-level cpu and
	// memory (always on Fargate): vCPUs and MiB.
	Limits     *ecsLimits
	Containers []struct {
		DockerId    string
		Name        string // in the task definition
		DockerName  string
		Image       string
		Labels      map[string]string
		KnownStatus string
		Type        string // NORMAL; CNI_PAUSE for the pause container of an awsvpc task on EC2
		CreatedAt   *time.Time
		StartedAt   *time.Time
		Ports       []ecsPort
		Networks    []ecsNetwork
		// Limits: the container's; CPU is CPU shares (a relative weight,
		// never a limit), Memory MiB.
		Limits *ecsLimits
	}
}

// ecsLimits are the Limits of a task or a container in task metadata.
type ecsLimits struct {
	CPU    float64
	Memory uint64
}

// taskMetadataSource finds the containers of the task the plugin runs in.
type taskMetadataSource struct {
	URL           string   // the endpoint's base URL, ECS_CONTAINER_METADATA_URI_V4
	Names         []string // regular expressions, as docker ps --filter name=
	Labels        []string // KEY or KEY=VALUE, as docker ps --filter label=
	ContainerPort uint16   // 0: every TCP port a container lists
	OptIn         bool     // only containers with a gostats.* or CloudWatch label
	hc            httpDoer
	timeout       time.Duration // the time the run gives discovery, named by the error when the endpoint does not answer
	formats       formatList    // what a gostats.format label may name
}

func openTaskMetadataSource(opts options, env sourceEnv) source {
	return taskMetadataSource{URL: opts.TaskMetadataURL, Names: opts.Names, Labels: opts.Labels,
		ContainerPort: opts.ContainerPort, OptIn: opts.OptIn, hc: env.hc, timeout: env.timeout, formats: env.formats}
}

// taskURL is the URL asked: the task's metadata.
func (s taskMetadataSource) taskURL() string {
	return strings.TrimSuffix(s.URL, "/") + "/task"
}

// discover asks the endpoint once and returns the targets: every running
// container of type NORMAL that matches the filters, at each TCP port it
// lists (--container-port: that port only). In an awsvpc task (all of
// Fargate) the task's containers share one network namespace, so they are
// reached at 127.0.0.1; in other modes at the container's own address. The
// error is one line naming the URL.
func (s taskMetadataSource) discover(ctx context.Context) (found, error) {
	if s.URL == "" {
		return found{}, fmt.Errorf("--source task-metadata: %s is not set and no --task-metadata-url is given; run the plugin in an ECS task (Fargate platform 1.4.0 or later, ECS agent 1.39.0 or later on EC2), such as from mackerel-container-agent", envTaskMetadata)
	}
	var md taskMetadata
	if err := getJSON(ctx, s.hc, s.taskURL(), &md); err != nil {
		cause, refused := httpCause(err, s.timeout)
		if refused {
			cause += ": the endpoint is reached only from inside an ECS task; set --task-metadata-url if it is elsewhere"
		}
		return found{}, fmt.Errorf("cannot read task metadata at %s: %s", s.taskURL(), cause)
	}
	if md.TaskARN == "" && len(md.Containers) == 0 {
		return found{}, fmt.Errorf("cannot read task metadata at %s: no TaskARN and no Containers: not a task metadata v4 answer", s.taskURL())
	}
	names, err := compileNames(s.Names)
	if err != nil {
		return found{}, err
	}

	var f found
	for _, c := range md.Containers {
		name := c.DockerName
		if name == "" {
			name = c.Name
		}
		pass := func(why string) { f.passed = append(f.passed, passedOver{name, c.DockerId, why}) }
		switch {
		case c.Type != "NORMAL":
			pass("the task's " + c.Type + " container")
			continue
		case c.KnownStatus != "RUNNING":
			pass("not running (" + c.KnownStatus + ")")
			continue
		case !matchName(names, c.DockerName, c.Name) || !matchLabels(s.Labels, c.Labels):
			pass("filtered out by --name or --label")
			continue
		}
		why, ports, set := labelled(c.Labels, s.formats, s.OptIn, ecsBindings(c.Ports), s.ContainerPort, false)
		switch {
		case why != "":
			pass(why)
			continue
		case set.err == nil && len(ports) == 0 && s.ContainerPort != 0:
			pass(fmt.Sprintf("does not list container port %d (--container-port)", s.ContainerPort))
			continue
		case set.err == nil && len(ports) == 0:
			pass("lists no TCP port (no portMappings; a " + labelPort + " label names one)")
			continue
		case set.err != nil:
			ports = []binding{{containerPort: set.port}}
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
		if host == "" {
			f.warnings = append(f.warnings, fmt.Sprintf("container %s %s skipped: the task metadata at %s gives it no IPv4 address (network mode %q)",
				name, shortID(c.DockerId), s.taskURL(), mode))
			continue
		}
		var created, started int64
		if c.CreatedAt != nil {
			created = c.CreatedAt.Unix()
		}
		started = created
		if c.StartedAt != nil {
			started = c.StartedAt.Unix()
		}
		for _, p := range ports {
			t := target{
				ContainerID:   c.DockerId,
				ContainerName: name,
				Created:       created,
				Started:       started,
				Family:        md.Family,
				Revision:      md.Revision,
				ECSContainer:  c.Name,
				TaskARN:       md.TaskARN,
				TaskID:        taskID(md.TaskARN),
				ARN:           parseTaskARN(md.TaskARN),
				Cluster:       md.Cluster,
				LaunchType:    md.LaunchType,
				Labels:        c.Labels,
				Image:         c.Image,
				Zone:          md.AvailabilityZone,
				Host:          host,
				Port:          p.containerPort,
				PrivatePort:   p.containerPort,
				AWSVPC:        mode == "awsvpc",
				gap:           taskMetadataGap,
			}
			if mode == "awsvpc" {
				t.gap = taskMetadataAWSVPCGap
			}
			if mode != "awsvpc" && mode != "host" {
				t.HostPort = p.hostPort // a published port; in awsvpc the agent repeats the container port
			}
			f.targets = append(f.targets, t.withSettings(set))
		}
	}
	return f, nil
}

// taskMetadataGap is why a container of the task metadata has no value for
// a --key placeholder: the field it comes from is missing.
func taskMetadataGap(placeholder string) keyGap {
	field := map[string]string{"family": "Family", "revision": "Revision", "container": "Name", "task": "TaskARN"}[placeholder]
	switch {
	case placeholder == "port":
		return keyGap{why: "it publishes no host port for its container port"}
	case field != "":
		return keyGap{why: "the task metadata gives it no " + field}
	}
	return keyGap{}
}

// taskMetadataAWSVPCGap is taskMetadataGap for an awsvpc task's containers.
func taskMetadataAWSVPCGap(placeholder string) keyGap {
	if placeholder == "port" {
		return awsvpcGap(placeholder)
	}
	return taskMetadataGap(placeholder)
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
