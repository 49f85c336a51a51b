package mpecsgostats

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// The task metadata source's container stats (--container-metrics): one
// GET of ${ECS_CONTAINER_METADATA_URI_V4}/task/stats a run for all the
// task's containers. A null or {} entry costs its container only. The
// limits come from each entry alone (the task's Limits are not used yet).

// containerStats asks the endpoint once for the stats of the task's
// containers and gives those of ids.
func (s taskMetadataSource) containerStats(ctx context.Context, ids []string, _ int) map[string]statsResult {
	out := make(map[string]statsResult, len(ids))
	url := strings.TrimSuffix(s.URL, "/") + "/task/stats"
	ts, err := s.taskStats(ctx, url)
	if err != nil {
		for _, id := range ids {
			out[id] = statsResult{err: err}
		}
		return out
	}
	for _, id := range ids {
		e, ok := ts[id]
		switch {
		case !ok:
			out[id] = statsResult{err: fmt.Errorf("%s has no entry for it", url)}
		case e == nil:
			out[id] = statsResult{err: fmt.Errorf("%s gives null for it", url)}
		default:
			out[id] = statsResult{stats: e}
		}
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
