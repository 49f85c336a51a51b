#!/usr/bin/env bash
# Starts three sample Go tasks (and one broken one) the way the ECS agent runs
# them in bridge mode, on dynamic host ports (scripts/ecs-task.sh), runs the
# plugin over them, then removes everything it created. Needs a Docker daemon
# at $DOCKER_HOST; `make demo` provides one.
set -eu
cd "$(dirname "$0")/.."

id=demo$$
cluster=$id
image=ecs-gostats-statsapp:$id
dir=$(mktemp -d)
cleanup() {
	scripts/ecs-task.sh rm --cluster "$cluster" --image "$image" 2>/dev/null || true
	rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*"; }

echo "building the plugin and the sample app (testdata/statsapp)"
CGO_ENABLED=0 go build -trimpath -o "$dir/mackerel-plugin-ecs-gostats" .
scripts/ecs-task.sh image "$image"

run_task() { # family mode
	scripts/ecs-task.sh run --image "$image" --cluster "$cluster" --family "$1" --container-name "$1" --mode "$2" >/dev/null
}
run_task web ok
run_task web ok
run_task api ok
run_task legacy badjson

plugin() { "$dir/mackerel-plugin-ecs-gostats" --label "com.amazonaws.ecs.cluster=$cluster" --tempfile "$dir/state" "$@"; }

for _ in $(seq 1 50); do # wait until the three healthy tasks answer
	[ "$(plugin --list --timeout 1s | grep -c '  ok ')" -ge 3 ] && break
	sleep 0.2
done

step docker ps --filter label=com.amazonaws.ecs.cluster=$cluster
docker ps --filter "label=com.amazonaws.ecs.cluster=$cluster" --format 'table {{.Names}}\t{{.Ports}}'

step mackerel-plugin-ecs-gostats --list
plugin --list

step 'mackerel-plugin-ecs-gostats | sort   # first run: gauges only (diffs need a previous run)'
plugin 2>&1 | sort
sleep 1.5
step 'mackerel-plugin-ecs-gostats | sort   # 1.5 s later: diffs too, as per-minute rates'
plugin 2>&1 | sort

step 'MACKEREL_AGENT_PLUGIN_META=1 mackerel-plugin-ecs-gostats | head -c 600'
MACKEREL_AGENT_PLUGIN_META=1 plugin | head -c 600
echo ...
echo
echo "removing the demo tasks and image"
