package mpecsgostats

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Target is one stats endpoint to scrape: one TCP port of one running
// container, with what keys, warnings and outputs need to know of its task.
// Sources make targets; every later stage only reads them.
type target struct {
	ContainerID   string
	ContainerName string // the Docker container name
	Created       int64  // container creation, unix seconds
	Started       int64  // container start, unix seconds: Docker's creation, the task metadata's StartedAt
	Family        string // task definition family, "" outside ECS
	Revision      string // task definition revision
	ECSContainer  string // the container's name in the task definition
	TaskARN       string
	TaskID        string  // last part of the task ARN
	Cluster       string  // the cluster's ARN or name, as the source gives it
	LaunchType    string  // EC2 or FARGATE, "" when the source does not say
	ARN           taskARN // the task ARN's parts: region, account
	HostName      string  // the name of the host the task runs on, "" when the source does not know it
	Zone          string  // the availability zone, "" when the source does not say
	InstanceARN   string  // the ECS container instance's ARN, "" when none (Fargate) or unknown
	Image         string  // the container's image as the task definition names it (repository:tag)
	Labels        map[string]string
	Host          string // address used to reach the port
	Port          uint16 // port used to reach it: HostPort or PrivatePort
	HostPort      uint16 // published host port, 0 when not published
	PrivatePort   uint16 // the container port
	AWSVPC        bool   // of an awsvpc task: reached at the task's own address, no host port

	// How to scrape it, from its labels (labels.go): "" and nil for the
	// flags'.
	Path   string
	format format
	// bad is a label's bad value: the target is reported failed with it,
	// and never scraped.
	bad error
	// gap says why the target has no value for a --key placeholder, in the
	// words of its source (keys.go); nil: "it has no value".
	gap func(placeholder string) keyGap
}

// keyGap is why a target has no value for a --key placeholder.
type keyGap struct {
	why string // "it has no label com.amazonaws.ecs.task-definition-family"
	// kind, when set, is the kind of task that never has a value ("awsvpc
	// task"): its targets skipped for the placeholder share one warning,
	// which ends with fix.
	kind, fix string
}

// taskARN is a parsed task ARN, arn:PARTITION:ecs:REGION:ACCOUNT:task/[CLUSTER/]ID.
type taskARN struct {
	Partition, Region, Account, ID string
}

// parseTaskARN splits a task ARN; the zero taskARN when s is none.
func parseTaskARN(s string) taskARN {
	f := strings.SplitN(s, ":", 6)
	if len(f) != 6 || f[0] != "arn" || f[2] != "ecs" || !strings.HasPrefix(f[5], "task/") || f[1] == "" || f[3] == "" || f[4] == "" {
		return taskARN{}
	}
	return taskARN{Partition: f[1], Region: f[3], Account: f[4], ID: f[5][strings.LastIndexByte(f[5], '/')+1:]}
}

// clusterARN is the cluster's ARN: Cluster when it is one, else made of the
// cluster name and the task's region and account; "" when neither is known.
func (t target) clusterARN() string {
	switch {
	case strings.HasPrefix(t.Cluster, "arn:"):
		return t.Cluster
	case t.Cluster != "" && t.ARN.Region != "":
		return "arn:" + t.ARN.Partition + ":ecs:" + t.ARN.Region + ":" + t.ARN.Account + ":cluster/" + t.Cluster
	}
	return ""
}

// Labels the ECS agent puts on every container it starts.
const (
	labelCluster       = "com.amazonaws.ecs.cluster"
	labelFamily        = "com.amazonaws.ecs.task-definition-family"
	labelRevision      = "com.amazonaws.ecs.task-definition-version"
	labelContainerName = "com.amazonaws.ecs.container-name"
	labelTaskARN       = "com.amazonaws.ecs.task-arn"
)

// ShortID is the 12-character container id docker ps shows.
func (t target) ShortID() string { return shortID(t.ContainerID) }

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// Addr is host:port, with brackets for IPv6.
func (t target) Addr() string {
	return net.JoinHostPort(t.Host, strconv.Itoa(int(t.Port)))
}

// URL is the target's endpoint at path.
func (t target) URL(scheme, path string) string {
	return scheme + "://" + t.Addr() + path
}

// identity tells targets apart across runs: a container and its port. A
// task replaced by another (even on the same host port) is another target.
func (t target) identity() string {
	return fmt.Sprintf("%s:%d", t.ContainerID, t.PrivatePort)
}

// taskID is the last part of a task ARN
// (arn:aws:ecs:REGION:ACCOUNT:task/CLUSTER/ID).
func taskID(arn string) string {
	return arn[strings.LastIndex(arn, "/")+1:]
}
