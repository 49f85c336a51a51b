package cstats

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadNetDev(t *testing.T) {
	// testdata/net_dev.txt: lo 987654 / 987654 (not counted), eth0
	// 1500000 / 250000, eth1 20000 / 3000
	rx, tx, err := ReadNetDev(filepath.Join("testdata", "net_dev.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if rx != 1520000 || tx != 253000 { // 1500000 + 20000, 250000 + 3000
		t.Errorf("ReadNetDev = %d, %d; want 1520000, 253000", rx, tx)
	}

	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	header := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	// only lo (--network none): 0, 0
	rx, tx, err = ReadNetDev(write("lo", header+"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n"))
	if err != nil || rx != 0 || tx != 0 {
		t.Errorf("lo only: %d, %d, %v", rx, tx, err)
	}
	// a name run into its first number, as old kernels wrote it
	rx, tx, err = ReadNetDev(write("tight", header+"eth0:12345 6 0 0 0 0 0 0 678 9 0 0 0 0 0 0\n"))
	if err != nil || rx != 12345 || tx != 678 {
		t.Errorf("eth0:12345: %d, %d, %v", rx, tx, err)
	}

	for name, body := range map[string]string{
		"empty":     "",
		"short":     header + "  eth0: 1 2 3\n",
		"notnumber": header + "  eth0: x 0 0 0 0 0 0 0 y 0 0 0 0 0 0 0\n",
		"garbage":   header + "no colon here\n",
	} {
		_, _, err := ReadNetDev(write(name, body))
		if err == nil {
			t.Errorf("%s: no error", name)
		} else if !strings.HasPrefix(err.Error(), "reading network counters: ") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q is not one line naming what failed", name, err)
		}
	}
	if _, _, err := ReadNetDev(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file: no error")
	}
}

// TestReadNetDevSelf reads this process's own network namespace.
func TestReadNetDevSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/dev"); err != nil {
		t.Skip("no /proc/self/net/dev: ", err)
	}
	if _, _, err := ReadNetDev("/proc/self/net/dev"); err != nil {
		t.Error(err)
	}
}

func TestReadMemTotal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "meminfo")
	os.WriteFile(p, []byte("MemTotal:       24684084 kB\nMemFree:         1000000 kB\n"), 0o644)
	m, err := ReadMemTotal(p)
	if err != nil || m != 25276502016 { // 24684084 × 1024
		t.Errorf("ReadMemTotal = %d, %v; want 25276502016", m, err)
	}
	for name, body := range map[string]string{
		"none":  "MemFree: 1 kB\n",
		"unit":  "MemTotal: 1 MB\n",
		"value": "MemTotal: x kB\n",
	} {
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := ReadMemTotal(p); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %v", name, err)
		}
	}
	if _, err := os.Stat("/proc/meminfo"); err == nil {
		if m, err := ReadMemTotal("/proc/meminfo"); err != nil || m == 0 {
			t.Errorf("/proc/meminfo: %d, %v", m, err)
		}
	}
}
