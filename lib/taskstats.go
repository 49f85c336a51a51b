package mpecsgostats

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// The task metadata source's container stats (--container-metrics): one
// GET of ${ECS_CONTAINER_METADATA_URI_V4}/task/stats a run for all the
// task's containers, beside one GET of /task for the limits (the task's
// Limits, each container's Limits.Memory; never its Limits.CPU, which is
// CPU shares) and the sidecars. A null or {} entry costs its container
// only. In an awsvpc task the containers share the ENI: its counters,
// repeated in every entry, are the task's, taken once (cstats.TaskNetwork).

// containerStats asks the endpoint once for the stats of the task's
// containers and gives those of the containers asked and of the other
// containers of the task.
func (s taskMetadataSource) containerStats(ctx context.Context, ask statsAsk) statsAnswer {
	out := statsAnswer{results: make(map[string]statsResult, len(ask.containers))}
	url := strings.TrimSuffix(s.URL, "/") + "/task/stats"
	var ts cstats.TaskStats
	var md taskMetadata
	var err, mdErr error
	var wg sync.WaitGroup
	wg.Go(func() { ts, err = s.taskStats(ctx, url) })
	wg.Go(func() { mdErr = getJSON(ctx, s.hc, s.taskURL(), &md) })
	wg.Wait()
	if err != nil {
		for _, c := range ask.containers {
			out.results[c.id] = statsResult{err: err}
		}
		return out
	}
	if mdErr != nil {
		cause, _ := httpCause(mdErr, s.timeout)
		out.warnings = append(out.warnings, fmt.Sprintf("container limits of the task: the host's, and no sidecar metrics: cannot read task metadata at %s: %s", s.taskURL(), cause))
	}

	asked := map[string]bool{}
	for _, c := range ask.containers {
		asked[c.id] = true
	}
	var task cstats.LimitInputs
	if md.Limits != nil {
		task.TaskCPUs, task.TaskMemoryMiB = md.Limits.CPU, md.Limits.Memory
	}
	limits := map[string]cstats.LimitInputs{}
	awsvpc := map[string]bool{}
	for _, c := range md.Containers {
		in := task
		if c.Limits != nil {
			in.MemoryMiB = c.Limits.Memory
		}
		limits[c.DockerId] = in
		for _, n := range c.Networks {
			awsvpc[c.DockerId] = awsvpc[c.DockerId] || n.NetworkMode == "awsvpc"
		}
		if !asked[c.DockerId] && c.Type == "NORMAL" && c.KnownStatus == "RUNNING" && !strings.EqualFold(c.Labels[labelScrape], "false") {
			sc := sidecar{id: c.DockerId, name: c.DockerName, ecsName: c.Name, taskARN: md.TaskARN}
			if sc.name == "" {
				sc.name = c.Name
			}
			if c.StartedAt != nil {
				sc.started = c.StartedAt.Unix()
			}
			out.sidecars = append(out.sidecars, sc)
		}
	}
	// the task's network: one entry's, the same for every awsvpc container
	holder, _, _ := cstats.TaskNetwork(ts, nil)

	ids := make([]string, 0, len(ask.containers)+len(out.sidecars)+1)
	for _, c := range ask.containers {
		ids = append(ids, c.id)
	}
	for _, sc := range out.sidecars {
		ids = append(ids, sc.id)
	}
	if holder != "" {
		ids = append(ids, holder)
	}
	for _, id := range ids {
		if _, done := out.results[id]; done {
			continue
		}
		e, ok := ts[id]
		var r statsResult
		switch {
		case !ok:
			r.err = fmt.Errorf("%s has no entry for it", url)
		case e == nil:
			r.err = fmt.Errorf("%s gives null for it", url)
		default:
			r.stats = e
		}
		r.limits = limits[id]
		if awsvpc[id] {
			r.netOf = holder // none: the ENI is CNI's, not Docker's (awsvpc on EC2)
			if holder == id {
				r.netOf = ""
			} else if holder == "" {
				r.netOf = "-"
			}
		}
		out.results[id] = r
	}
	return out
}

// taskStats asks url for the task's stats; the error is one line naming it.
func (s taskMetadataSource) taskStats(ctx context.Context, url string) (cstats.TaskStats, error) {
	a, err := get(ctx, s.hc, url, "application/json", maxECSBodyBytes)
	if err != nil {
		cause, _ := httpCause(err, s.timeout)
		return nil, fmt.Errorf("cannot read %s: %s", url, cause)
	}
	ts, err := cstats.DecodeTaskStats(bytes.NewReader(a.body))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %v", url, err)
	}
	return ts, nil
}
