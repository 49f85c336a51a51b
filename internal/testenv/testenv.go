// Package testenv holds what the tests of every package of
// mackerel-plugin-ecs-gostats need of their environment: the tools `make
// test` builds, and the rule that under CI nothing skips.
package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
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

// HungListener is a loopback address whose listener accepts connections
// and never reads or writes: a server that hangs. It closes at the test's
// end.
func HungListener(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// HelperProcess runs the test named test of this test binary in a process
// of its own, with env added to the environment (a test that must start
// fresh: the system roots read once, say), and returns what it printed
// less the test framework's PASS line.
func HelperProcess(t testing.TB, test string, env map[string]string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var lines []string
	for _, l := range strings.SplitAfter(out.String(), "\n") {
		if l != "PASS\n" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, ""), err
}
