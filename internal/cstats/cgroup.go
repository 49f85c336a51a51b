package cstats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CgroupLimits are the limits set on a cgroup (as ECS sets a task's on the
// cgroup parent of its containers).
type CgroupLimits struct {
	// CPU quota and period in µs; a quota ≤ 0 is none (v1 -1, v2 "max").
	CPUQuota  int64
	CPUPeriod int64
	// Memory limit in bytes; 0 is none read ("max" on v2). v1 shows an
	// unset limit as 2^63 − 4096: see Unlimited.
	Memory uint64
}

// ReadCgroupLimits reads the limits of cgroup parent (Docker's
// HostConfig.CgroupParent, e.g. /ecs/<task id>, or a systemd slice such as
// ecstasks-<task id>.slice) under the cgroup filesystem at root (normally
// /sys/fs/cgroup). It reads cgroup v2's cpu.max and memory.max when root is
// a v2 hierarchy (it has cgroup.controllers), else v1's
// cpu/<parent>/cpu.cfs_quota_us, cpu.cfs_period_us (cpu,cpuacct/ where cpu/
// is not there) and memory/<parent>/memory.limit_in_bytes. A controller whose
// files cannot be read leaves its fields zero; the error is returned when
// neither can be read.
func ReadCgroupLimits(root, parent string) (CgroupLimits, error) {
	rel := CgroupParentPath(parent)
	var l CgroupLimits
	var cpuErr, memErr error
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err == nil {
		dir := filepath.Join(root, rel)
		l.CPUQuota, l.CPUPeriod, cpuErr = readCPUMax(filepath.Join(dir, "cpu.max"))
		l.Memory, memErr = readUint(filepath.Join(dir, "memory.max"), true)
	} else {
		cpuDir := filepath.Join(root, "cpu")
		if _, err := os.Stat(cpuDir); err != nil {
			cpuDir = filepath.Join(root, "cpu,cpuacct")
		}
		var q uint64
		var qerr error
		l.CPUQuota, qerr = readInt(filepath.Join(cpuDir, rel, "cpu.cfs_quota_us"))
		q, cpuErr = readUint(filepath.Join(cpuDir, rel, "cpu.cfs_period_us"), false)
		l.CPUPeriod = int64(q)
		cpuErr = errors.Join(qerr, cpuErr)
		l.Memory, memErr = readUint(filepath.Join(root, "memory", rel, "memory.limit_in_bytes"), false)
	}
	if cpuErr != nil {
		l.CPUQuota, l.CPUPeriod = 0, 0
	}
	if cpuErr != nil && memErr != nil {
		return CgroupLimits{}, fmt.Errorf("reading the limits of cgroup %s: %v", parent, firstLine(cpuErr))
	}
	return l, nil
}

// CgroupParentPath is the directory of a cgroup parent relative to a
// controller's root: the path itself, or for a systemd slice name the
// slices it nests in (a-b.slice is a.slice/a-b.slice; -.slice is the root).
func CgroupParentPath(parent string) string {
	name, ok := strings.CutSuffix(parent, ".slice")
	if !ok || strings.Contains(parent, "/") {
		return filepath.Join("/", parent)
	}
	if name == "-" || name == "" {
		return "/"
	}
	parts := strings.Split(name, "-")
	p := "/"
	for i := range parts {
		p = filepath.Join(p, strings.Join(parts[:i+1], "-")+".slice")
	}
	return p
}

// readCPUMax reads cgroup v2's cpu.max: "<quota|max> <period>".
func readCPUMax(path string) (quota, period int64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 || len(f) > 2 {
		return 0, 0, fmt.Errorf("%s: not <quota> <period>: %q", path, strings.TrimSpace(string(b)))
	}
	period = defaultCFSPeriod
	if len(f) == 2 {
		if period, err = strconv.ParseInt(f[1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("%s: %v", path, err)
		}
	}
	if f[0] == "max" {
		return -1, period, nil
	}
	if quota, err = strconv.ParseInt(f[0], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%s: %v", path, err)
	}
	return quota, period, nil
}

// readUint reads a file holding one unsigned number, or "max" (0) when
// maxOK.
func readUint(path string, maxOK bool) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if maxOK && s == "max" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}

// readInt reads a file holding one signed number.
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %v", path, err)
	}
	return v, nil
}

// firstLine is err's message up to its first line break (errors.Join puts
// one between errors).
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
