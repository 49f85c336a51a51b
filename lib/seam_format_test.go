package mpecsgostats

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// kvFormat is a format of the tests' own, to show what a new format takes:
// this file, and one line in a run's parts (seams_test.go). It reads
// "kv-stats" answers: a header line, then "name value" lines.
type kvFormat struct{}

func (kvFormat) name() string        { return "kv" }
func (kvFormat) title() string       { return "kv-stats text" }
func (kvFormat) defaultPath() string { return "/kv" }
func (kvFormat) mediaRange() string  { return "text/x-kv-stats" }
func (kvFormat) maxBodyBytes() int   { return 1 << 10 }

func (kvFormat) recognise(contentType string, body []byte) bool {
	return bytes.HasPrefix(body, []byte("kv-stats\n"))
}

func (kvFormat) parse(body []byte) (values, error) {
	names := map[string]metric{"goroutines": goroutineNum, "alloc": memoryAlloc, "gcs": hiddenNumGC}
	if !bytes.HasPrefix(body, []byte("kv-stats\n")) {
		return nil, fmt.Errorf("not kv-stats")
	}
	v := values{}
	sc := bufio.NewScanner(bytes.NewReader(body[len("kv-stats\n"):]))
	for sc.Scan() {
		name, num, _ := strings.Cut(sc.Text(), " ")
		n, err := strconv.ParseFloat(num, 64)
		if err != nil {
			return nil, fmt.Errorf("kv-stats: %s: %q is not a number", name, num)
		}
		if m, ok := names[name]; ok {
			v[m] = n
		}
	}
	return v, nil
}

// derive: collections per second, from the hidden counter.
func (kvFormat) derive(cur, prev values, seconds float64) values {
	if c, p := cur[hiddenNumGC], prev[hiddenNumGC]; c >= p {
		return values{gcPerSecond: (c - p) / seconds}
	}
	return nil
}
