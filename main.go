// Command mackerel-plugin-ecs-gostats is a mackerel-agent metrics plugin that
// finds the Go tasks on an ECS container instance through the Docker Engine
// API and reports their golang-stats-api-handler stats.
package main

import (
	"os"

	mpecsgostats "github.com/ecs-gostats/mackerel-plugin-ecs-gostats/lib"
)

// version is stamped at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(mpecsgostats.Do(version))
}
