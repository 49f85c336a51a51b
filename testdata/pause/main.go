// Command pause holds a network namespace for the containers that join it
// (docker run --network container:<pause>), as the ECS agent's pause
// container does for an awsvpc task: it does nothing until it is stopped.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	<-c
}
