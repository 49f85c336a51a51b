#!/usr/bin/env bash
# Starts three sample Go tasks (and one broken one) the way the ECS agent runs
# them in bridge mode, on dynamic host ports, runs the plugin over them, then
# removes everything it created. Needs a Docker daemon at $DOCKER_HOST; `make
# demo` provides one.
set -eu
cd "$(dirname "$0")/.."

id=demo$$
cluster=$id
image=ecs-gostats-statsapp:$id
dir=$(mktemp -d)
cleanup() {
	ids=$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$cluster")
	[ -z "$ids" ] || docker rm -f $ids >/dev/null
	docker rmi "$image" >/dev/null 2>&1 || true
	rm -rf "$dir"
}
trap cleanup EXIT

step() { printf '\n$ %s\n' "$*"; }

echo "building the plugin and the sample app (testdata/statsapp)"
CGO_ENABLED=0 go build -trimpath -o "$dir/mackerel-plugin-ecs-gostats" .
mkdir "$dir/img"
CGO_ENABLED=0 go build -trimpath -o "$dir/img/statsapp" ./testdata/statsapp
tar -C "$dir/img" -cf "$dir/app.tar" statsapp
docker import -c 'ENTRYPOINT ["/statsapp"]' -c 'EXPOSE 8080' "$dir/app.tar" "$image" >/dev/null

run_task() { # family mode
	local arn
	arn=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
	docker run -d -p 8080 -e "STATSAPP_MODE=$2" \
		--name "ecs-$1-1-$1-$id-$RANDOM" \
		-l "com.amazonaws.ecs.cluster=$cluster" \
		-l "com.amazonaws.ecs.task-definition-family=$1" \
		-l "com.amazonaws.ecs.container-name=$1" \
		-l "com.amazonaws.ecs.task-arn=arn:aws:ecs:ap-northeast-1:123456789012:task/$cluster/$arn" \
		"$image" >/dev/null
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
plugin 2>&1 | grep -v 'does not exist at last fetch' | sort
sleep 1.5
step 'mackerel-plugin-ecs-gostats | sort   # 1.5 s later: diffs too, as per-minute rates'
plugin 2>&1 | sort

step 'MACKEREL_AGENT_PLUGIN_META=1 mackerel-plugin-ecs-gostats | head -c 600'
MACKEREL_AGENT_PLUGIN_META=1 plugin | head -c 600
echo ...
echo
echo "removing the demo tasks and image"
