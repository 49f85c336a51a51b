// Command measure runs a command once and appends to FILE one line
//
//	wall_s cpu_s user_s sys_s maxrss_kib exit_code
//
// wall is from start to exit (monotonic clock, µs resolution); cpu, user, sys
// and maxrss come from the rusage of the command's process as returned by
// wait4: they include the descendants it waited for (a shell loop's
// children), and maxrss is the largest resident set of any one of them.
// The command's stdout and stderr are passed through.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "-o" {
		fmt.Fprintln(os.Stderr, "usage: measure -o FILE CMD [ARGS...]")
		os.Exit(2)
	}
	out, err := os.OpenFile(os.Args[2], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
	cmd := exec.Command(os.Args[3], os.Args[4:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	err = cmd.Run()
	wall := time.Since(start)
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	user := time.Duration(ru.Utime.Nano())
	sys := time.Duration(ru.Stime.Nano())
	fmt.Fprintf(out, "%.6f %.6f %.6f %.6f %d %d\n", wall.Seconds(), (user + sys).Seconds(),
		user.Seconds(), sys.Seconds(), ru.Maxrss, cmd.ProcessState.ExitCode())
	if err := out.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "measure:", err)
		os.Exit(1)
	}
}
