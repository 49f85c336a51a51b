package mpecsgostats

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/docker/docker/client"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// The Docker source's container stats (--container-metrics): one
// GET /containers/{id}/stats?stream=false&one-shot=true per container. The
// limits come from the answer alone (online CPUs, cgroup v1's hierarchical
// memory limit): the HostConfig quotas are not asked for.

// containerStats asks the daemon for the stats of each container id, at
// most concurrency at once. A daemon that refuses the API version asked
// first (as discovery does, see apiVersion) is asked again after
// negotiating.
func (d dockerSource) containerStats(ctx context.Context, ids []string, concurrency int) map[string]statsResult {
	out := d.statsWith(ctx, ids, concurrency, client.WithVersion(apiVersion))
	for _, r := range out {
		if r.err != nil && strings.Contains(r.err.Error(), "client version "+apiVersion+" is too") {
			return d.statsWith(ctx, ids, concurrency, client.WithAPIVersionNegotiation())
		}
	}
	return out
}

func (d dockerSource) statsWith(ctx context.Context, ids []string, concurrency int, version client.Opt) map[string]statsResult {
	out := make(map[string]statsResult, len(ids))
	dc, err := client.NewClientWithOpts(client.WithHost(d.Host), client.WithTimeout(d.Timeout), version)
	if err != nil {
		for _, id := range ids {
			out[id] = statsResult{err: err}
		}
		return out
	}
	defer dc.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(concurrency, 1))
	for _, id := range ids {
		wg.Go(func() {
			var r statsResult
			select {
			case sem <- struct{}{}:
				r = d.oneStats(ctx, dc, id)
				<-sem
			case <-ctx.Done():
				r.err = errors.New("not asked: the run's deadline passed before its turn")
			}
			mu.Lock()
			out[id] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

func (d dockerSource) oneStats(ctx context.Context, dc *client.Client, id string) statsResult {
	resp, err := dc.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return statsResult{err: d.statsError(err)}
	}
	defer resp.Body.Close()
	s, err := cstats.DecodeDockerStats(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return statsResult{err: d.statsError(ctx.Err())}
		}
		return statsResult{err: err}
	}
	return statsResult{stats: &cstats.TaskStat{StatsResponse: s}}
}

// statsError is a failed stats call in a few words.
func (d dockerSource) statsError(err error) error {
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return errors.New("no stats answer in time from the Docker daemon at " + d.Host)
	}
	return errors.New(oneLine(err.Error()))
}
