package mpecsgostats

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/cstats"
)

// The state file is the plugin's own record between runs: for each task key,
// which target had it and that target's counters at the last run. This file
// is the only code that knows its layout.

// stateVersion marks the layout below. A file of another layout (such as the
// go-mackerel-plugin-helper state earlier versions kept) counts as no state:
// it costs one run of rates.
const stateVersion = 1

type state struct {
	Version int                  `json:"version"`
	Tasks   map[string]taskState `json:"tasks"`
	// Slots: for each key with {slot} left unfilled, the slot of each target
	// (Target.identity) listed at the last run.
	Slots map[string]map[string]int `json:"slots,omitempty"`
	// Learnt: with --format auto, what each target (target.identity)
	// answered the probes with (probe.go).
	Learnt map[string]learnt `json:"learnt,omitempty"`
	// Containers: with --container-metrics, the last stats sample of each
	// container (by Docker id) listed at the last run, for its rates, and
	// what an inspect of it told, asked once a container.
	Containers map[string]containerState `json:"containers,omitempty"`
	// Services: with an output that labels series, what the environment of
	// each container (by Docker id) listed at the last run said of its
	// service (serviceid.go), "nothing" included; a container whose
	// environment could not be read is not here, and is read again.
	Services map[string]serviceEnv `json:"services,omitempty"`
}

// containerState is what the state keeps of one container: its last stats
// sample (or, for the holder of a shared network namespace, the namespace's
// counters) and its spec. Spec is optional: a state without it is the same
// version, and costs one inspect.
type containerState struct {
	cstats.Sample
	Spec *containerSpec `json:"spec,omitempty"`
}

// containerSpec is what a container's HostConfig tells of its limits and
// network: fixed for the container's lifetime.
type containerSpec struct {
	NanoCPUs     int64  `json:"nano_cpus,omitempty"`
	CPUQuota     int64  `json:"cpu_quota,omitempty"`
	CPUPeriod    int64  `json:"cpu_period,omitempty"`
	Memory       uint64 `json:"memory,omitempty"`
	CgroupParent string `json:"cgroup_parent,omitempty"`
	// NetNS: the id of the container whose network namespace it joined
	// (NetworkMode container:<id>), "" for its own.
	NetNS string `json:"netns,omitempty"`
}

// learnt is what the probes of one target found.
type learnt struct {
	Format       string   `json:"format,omitempty"` // "": none of the probes answered with a known format
	Path         string   `json:"path,omitempty"`
	Time         int64    `json:"time"`                    // unix seconds of the probe
	FailingSince int64    `json:"failing_since,omitempty"` // an identified target's first failure since it last answered
	Tried        []string `json:"tried,omitempty"`         // what the probes got, for --list
}

// taskState is one task key's record.
type taskState struct {
	Target   string             `json:"target"`   // the target's identity (Target.identity)
	Time     int64              `json:"time"`     // unix seconds when the counters were read
	Counters map[string]float64 `json:"counters"` // "<graph>.<metric>" of the diff metrics
}

// loadState reads the state at path. A missing file is an empty state; an
// unreadable or corrupt one is an empty state and an error to warn about.
func loadState(path string) (state, error) {
	empty := state{Version: stateVersion, Tasks: map[string]taskState{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return empty, nil
	}
	if err != nil {
		return empty, fmt.Errorf("state file ignored, rates start again: %w", err)
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return empty, fmt.Errorf("state file %s ignored, rates start again: %v", path, err)
	}
	if s.Version != stateVersion || s.Tasks == nil {
		return empty, nil
	}
	return s, nil
}

// saveState writes s to path atomically (a concurrent run reads the old or
// the new file, never half of one), creating the directory when missing.
func saveState(path string, s state) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	tmp, err := os.CreateTemp(dir, filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("cannot save state %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cannot save state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("cannot save state: %w", err)
	}
	return nil
}
