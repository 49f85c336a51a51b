package mpecsgostats

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// The Docker source's container stats (--container-metrics): per container,
// one GET /containers/{id}/stats?stream=false&one-shot=true a run, and one
// inspect in its lifetime for its HostConfig (hard CPU quota, memory limit,
// cgroup parent, network mode), kept in the state. With targets in ECS
// tasks, one more list of the tasks' containers finds their sidecars. The
// containers that joined another's network namespace (awsvpc tasks: the
// pause container's, where CNI made the ENI Docker does not see) report
// that namespace's counters, read from /proc/<pid>/net/dev of its holder,
// whose pid an inspect tells, once a task a run.

// containerStats asks the daemon for the stats of the containers asked and
// of their tasks' sidecars, at most ask.concurrency calls at once.
func (d dockerSource) containerStats(ctx context.Context, ask statsAsk) statsAnswer {
	if d.engineErr != nil {
		out := statsAnswer{results: make(map[string]statsResult, len(ask.containers))}
		for _, c := range ask.containers {
			out.results[c.id] = statsResult{err: d.engineErr}
		}
		return out
	}
	return d.statsOf(ctx, d.engine, ask)
}

// dockerStatsClient is the Docker Engine calls the container stats make.
type dockerStatsClient interface {
	containerLister
	ContainerInspect(ctx context.Context, id string) (engineapi.InspectResponse, error)
	ContainerStatsOneShot(ctx context.Context, id string) (io.ReadCloser, error)
}

// statsOf is containerStats with its client.
func (d dockerSource) statsOf(ctx context.Context, dc dockerStatsClient, ask statsAsk) statsAnswer {
	out := statsAnswer{results: make(map[string]statsResult, len(ask.containers))}
	names := map[string]string{}
	for _, c := range ask.containers {
		names[c.id] = c.name
	}
	if ask.sidecars { // one more list call: only for an output that sends them
		sidecars, err := d.sidecars(ctx, dc, ask.containers)
		if err != nil {
			out.warnings = append(out.warnings, err.Error())
		}
		out.sidecars = sidecars
		for _, s := range sidecars {
			names[s.id] = s.name
		}
	}

	var mu sync.Mutex
	put := func(id string, r statsResult, warning string) {
		mu.Lock()
		out.results[id] = r
		if warning != "" {
			out.warnings = append(out.warnings, warning)
		}
		mu.Unlock()
	}
	ids := slices.Collect(maps.Keys(names))
	inTurns(ctx, len(ids), ask.concurrency, func(i int) {
		r, warning := d.oneStats(ctx, dc, ids[i], names[ids[i]], ask.prev[ids[i]].Spec)
		put(ids[i], r, warning)
	}, func(i int) { put(ids[i], statsResult{err: errNotAsked}, "") })

	// the cgroup parents' limits, each read once
	parents := map[string]cstats.CgroupLimits{}
	for id, r := range out.results {
		if r.spec == nil || r.spec.CgroupParent == "" {
			continue
		}
		p, ok := parents[r.spec.CgroupParent]
		if !ok {
			p, _ = cstats.ReadCgroupLimits(ask.host.cgroup, r.spec.CgroupParent) // unreadable (a plugin in a container): the next limit
			parents[r.spec.CgroupParent] = p
		}
		r.limits.Parent = p
		out.results[id] = r
	}

	// the shared network namespaces' counters, each read once
	holders := map[string]bool{}
	for _, r := range out.results {
		if r.spec != nil && r.spec.NetNS != "" {
			holders[r.spec.NetNS] = true
		}
	}
	var wg sync.WaitGroup
	for id := range holders {
		if _, asked := out.results[id]; asked {
			continue // a holder measured itself (a target, a sidecar): its own stats have the namespace's network
		}
		wg.Go(func() { put(id, d.netnsCounters(ctx, dc, id, ask.host.proc, ask.now), "") })
	}
	wg.Wait()
	for id, r := range out.results {
		if r.spec != nil && r.spec.NetNS != "" {
			r.netOf = r.spec.NetNS
			out.results[id] = r
		}
	}
	return out
}

// oneStats is the stats of container id, with its spec: spec when known,
// else from an inspect made beside the stats call, whose failure costs the
// limits only (a warning).
func (d dockerSource) oneStats(ctx context.Context, dc dockerStatsClient, id, name string, spec *containerSpec) (r statsResult, warning string) {
	var inspectErr error
	var inspect sync.WaitGroup
	if spec == nil {
		inspect.Go(func() { spec, inspectErr = inspectSpec(ctx, dc, id) })
	}
	body, err := dc.ContainerStatsOneShot(ctx, id)
	inspect.Wait()
	if err != nil {
		return statsResult{err: d.statsError(err)}, ""
	}
	defer body.Close()
	s, err := cstats.DecodeDockerStats(body)
	if err != nil {
		if ctx.Err() != nil {
			return statsResult{err: d.statsError(ctx.Err())}, ""
		}
		return statsResult{err: err}, ""
	}
	r = statsResult{stats: &cstats.TaskStat{StatsResponse: s}, spec: spec}
	if spec != nil {
		r.limits = cstats.LimitInputs{NanoCPUs: spec.NanoCPUs, CPUQuota: spec.CPUQuota, CPUPeriod: spec.CPUPeriod, Memory: spec.Memory}
	} else {
		warning = fmt.Sprintf("container limits of container %s %s: the host's: cannot inspect it: %s", name, shortID(id), d.statsError(inspectErr))
	}
	return r, warning
}

// inspectSpec is what an inspect of container id tells of its limits and
// network.
func inspectSpec(ctx context.Context, dc dockerStatsClient, id string) (*containerSpec, error) {
	c, err := dc.ContainerInspect(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.HostConfig == nil {
		return nil, errors.New("the answer has no HostConfig")
	}
	hc := c.HostConfig
	spec := &containerSpec{NanoCPUs: hc.NanoCPUs, CPUQuota: hc.CPUQuota, CPUPeriod: hc.CPUPeriod, CgroupParent: hc.CgroupParent}
	if hc.Memory > 0 {
		spec.Memory = uint64(hc.Memory)
	}
	if ns, ok := strings.CutPrefix(hc.NetworkMode, "container:"); ok {
		spec.NetNS = ns
	}
	return spec, nil
}

// netnsCounters reads the network counters of the namespace container id
// holds: every interface but lo of /proc/<its pid>/net/dev, under proc.
func (d dockerSource) netnsCounters(ctx context.Context, dc dockerStatsClient, id, proc string, now func() time.Time) statsResult {
	c, err := dc.ContainerInspect(ctx, id)
	if err != nil {
		return statsResult{err: d.statsError(err)}
	}
	if c.State == nil || c.State.Pid <= 0 {
		return statsResult{err: errors.New("it is not running")}
	}
	read := now()
	rx, tx, err := cstats.ReadNetDev(filepath.Join(proc, strconv.Itoa(c.State.Pid), "net", "dev"))
	if err != nil {
		return statsResult{err: fmt.Errorf("%v (a plugin in a container needs the host's /proc: pid host)", err)}
	}
	return statsResult{net: &cstats.Sample{Read: read, NetRx: &rx, NetTx: &tx}}
}

// sidecars are the running containers of the tasks of cs that are not in
// cs, not a pause container and not opted out (gostats.scrape=false): one
// list of the ECS tasks' containers, only when cs has one.
func (d dockerSource) sidecars(ctx context.Context, dc containerLister, cs []containerRef) ([]sidecar, error) {
	tasks, asked := map[string]bool{}, map[string]bool{}
	for _, c := range cs {
		asked[c.id] = true
		if c.taskARN != "" {
			tasks[c.taskARN] = true
		}
	}
	if len(tasks) == 0 {
		return nil, nil
	}
	list, err := dc.ContainerList(ctx, map[string][]string{"status": {"running"}, "label": {labelTaskARN}})
	if err != nil {
		return nil, fmt.Errorf("no sidecar metrics: cannot list the tasks' containers: %s", d.statsError(err))
	}
	var out []sidecar
	for _, c := range list {
		if !tasks[c.Labels[labelTaskARN]] || asked[c.ID] || isPause(c) || strings.EqualFold(c.Labels[labelScrape], "false") {
			continue
		}
		out = append(out, sidecar{id: c.ID, name: containerName(c), ecsName: c.Labels[labelContainerName], taskARN: c.Labels[labelTaskARN], started: c.Created})
	}
	return out, nil
}

// statsError is a failed stats call in a few words.
func (d dockerSource) statsError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return errors.New("no stats answer in time from the Docker daemon at " + d.Host)
	}
	return errors.New(oneLine(err.Error()))
}
