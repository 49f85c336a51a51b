package cstats

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadNetDev sums the bytes received and sent over every interface but lo
// of a /proc/<pid>/net/dev file: the network namespace of that process (for
// an awsvpc task on EC2, the pause container's, where CNI made the ENI that
// Docker's stats do not show).
func ReadNetDev(path string) (rx, tx uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading network counters: %v", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	header := 0
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ':')
		if i < 0 {
			// the two header lines ("Inter-|   Receive ...", " face |bytes ...")
			if header++; header > 2 {
				return 0, 0, fmt.Errorf("reading network counters: %s: not a net/dev line: %q", path, line)
			}
			continue
		}
		name := strings.TrimSpace(line[:i])
		f := strings.Fields(line[i+1:])
		if len(f) < 16 {
			return 0, 0, fmt.Errorf("reading network counters: %s: interface %s has %d fields, not 16", path, name, len(f))
		}
		if name == "lo" {
			continue
		}
		r, err1 := strconv.ParseUint(f[0], 10, 64)
		t, err2 := strconv.ParseUint(f[8], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, 0, fmt.Errorf("reading network counters: %s: interface %s: bytes %q %q are not numbers", path, name, f[0], f[8])
		}
		rx += r
		tx += t
	}
	if header == 0 {
		return 0, 0, fmt.Errorf("reading network counters: %s: no net/dev header", path)
	}
	return rx, tx, nil
}

// ReadMemTotal is the host's memory in bytes: MemTotal of a /proc/meminfo
// file.
func ReadMemTotal(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("reading the host's memory: %v", err)
	}
	for line := range strings.Lines(string(b)) {
		rest, ok := strings.CutPrefix(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("reading the host's memory: %s: MemTotal is %q, not <n> kB", path, strings.TrimSpace(rest))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading the host's memory: %s: MemTotal: %v", path, err)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("reading the host's memory: %s has no MemTotal", path)
}
