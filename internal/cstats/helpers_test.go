package cstats

import (
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/ecs-gostats/mackerel-plugin-ecs-gostats/internal/engineapi"
)

// readDocker decodes a recorded Docker stats answer of testdata.
func readDocker(t testing.TB, name string) engineapi.StatsResponse {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := DecodeDockerStats(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return s
}

// readTask decodes a /task/stats answer at path.
func readTask(t testing.TB, path string) TaskStats {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ts, err := DecodeTaskStats(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return ts
}

// approx checks that got is there and within 1e-9 (relative, or absolute
// near 0) of want.
func approx(t testing.TB, what string, got *float64, want float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent, want %v", what, want)
		return
	}
	if d := math.Abs(*got - want); d > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}

// within checks that got is there and within tol (relative) of want.
func within(t testing.TB, what string, got *float64, want, tol float64) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent, want %v", what, want)
		return
	}
	if math.Abs(*got-want) > tol*math.Abs(want) {
		t.Errorf("%s = %v, want %v ± %.0f%%", what, *got, want, tol*100)
	}
}

func absent[T any](t testing.TB, what string, got *T) {
	t.Helper()
	if got != nil {
		t.Errorf("%s = %v, want absent", what, *got)
	}
}

func equal[T comparable](t testing.TB, what string, got *T, want T) {
	t.Helper()
	if got == nil {
		t.Errorf("%s: absent, want %v", what, want)
	} else if *got != want {
		t.Errorf("%s = %v, want %v", what, *got, want)
	}
}
