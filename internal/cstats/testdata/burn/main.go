// Command burn is the container of the cstats tests: it touches
// BURN_MIB MiB of memory and keeps it (every page written, so it is
// resident), and with BURN_CPU set it spins one goroutine in a busy loop, so
// that under a CPU quota it uses exactly the quota. It runs until it is
// stopped.
package main

import (
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	var held []byte
	if n, err := strconv.Atoi(os.Getenv("BURN_MIB")); err == nil && n > 0 {
		held = make([]byte, n<<20)
		for i := 0; i < len(held); i += 4096 {
			held[i] = 1
		}
	}
	if os.Getenv("BURN_CPU") != "" {
		go func() {
			x := uint64(1)
			for {
				x = x*6364136223846793005 + 1442695040888963407
				if x == 0 {
					println(x)
				}
			}
		}()
	}
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
	if len(held) > 0 && held[0] != 1 {
		os.Exit(1)
	}
}
