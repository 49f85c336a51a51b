// Package testenv holds what the tests of every package of
// mackerel-plugin-ecs-gostats need of their environment: the tools `make
// test` builds, and the rule that under CI nothing skips.
package testenv

import (
	"os"
	"testing"
)

// SkipUnlessCI skips t for why, or fails it when CI is set: under CI every
// precondition must hold, since a skip there would hide the test.
func SkipUnlessCI(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal("CI is set but " + why)
	}
	t.Skip(why)
}

// Tool is the path of a tool `make test` builds and names in the
// environment variable env.
func Tool(t testing.TB, env, tool string) string {
	t.Helper()
	p := os.Getenv(env)
	if p == "" {
		SkipUnlessCI(t, env+" is not set; run `make test`, which builds "+tool)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s: %v", env, err)
	}
	return p
}
