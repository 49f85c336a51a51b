#!/usr/bin/env bash
# Starts ECS-like Go tasks on the Docker daemon at $DOCKER_HOST, as the ECS
# agent starts a bridge-mode task container, for the integration tests
# (dockerenv_test.go), the demo and the bench. Run it from anywhere.
#
#   ecs-task.sh image TAG
#       Builds testdata/statsapp and testdata/pause (static) and imports them
#       as image TAG (ENTRYPOINT /statsapp, EXPOSE 8080; --entrypoint /pause
#       runs the pause program, which only holds a network namespace, as the
#       ECS agent's pause container of an awsvpc task does). Prints nothing.
#
#   ecs-task.sh run --image TAG --cluster C --family F [--revision N]
#                   [--container-name NAME] [--task-id ID] [--mode MODE]
#                   [--publish SPEC] [--env K=V]... [-- DOCKER_RUN_ARGS...]
#       docker run -d of the image as task container NAME (default app) of
#       revision N (default 1) of task definition family F in cluster C: named
#       ecs-F-N-NAME-<20 hex> (NAME without the characters Docker refuses in
#       names, as the ECS agent names ~internal~ecs~pause "internalecspause"),
#       with the labels the ECS agent sets
#       (com.amazonaws.ecs.cluster, .task-definition-family,
#       .task-definition-version, .container-name, .task-arn =
#       arn:aws:ecs:ap-northeast-1:123456789012:task/C/ID; ID defaults to 32
#       random hex digits: give the containers of one task the same ID).
#       MODE is the app's STATSAPP_MODE: ok (default), badjson, hang, error,
#       redirect, big, expvar, expvar-app, prometheus, prometheus-app (see
#       testdata/statsapp). --env K=V sets the app's environment, e.g.
#       STATSAPP_ADDR=:9090 (listen there instead of :8080), or
#       STATSAPP_STATS_ADDR=:9090 (serve the stats on a second port, 9090;
#       8080 then serves only /). SPEC is docker run's -p for container port
#       8080 (default 8080: a dynamic host port, as hostPort 0 in a task
#       definition); --publish none publishes nothing. DOCKER_RUN_ARGS go to
#       docker run as they are (e.g. --network container:<id> for a
#       container sharing another's network namespace, with --publish none;
#       -p 9090 to publish the second port too; --label gostats.port=9090 for
#       a task definition's dockerLabels).
#       Prints one line: <container id> <name> <host port>, the host port
#       being that of 8080/tcp's IPv4 binding, or - when it has none.
#
#   ecs-task.sh rm --cluster C [--image TAG]
#       Removes every container labelled com.amazonaws.ecs.cluster=C (running
#       or not), then image TAG.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
prog=$(basename "$0")

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
die() {
	echo "$prog: $*" >&2
	exit 1
}
hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
# need OPT VALUE: VALUE is the argument of OPT, present and not empty.
need() { [ -n "${2:-}" ] || die "$1 needs a value"; }

cmd_image() {
	[ $# -eq 1 ] && [ -n "$1" ] || usage
	local tag=$1
	dir=$(mktemp -d)
	trap 'rm -rf "$dir"' EXIT
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$dir/statsapp" ./testdata/statsapp)
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -o "$dir/pause" ./testdata/pause)
	tar -C "$dir" -cf "$dir/app.tar" statsapp pause
	docker import -c 'ENTRYPOINT ["/statsapp"]' -c 'EXPOSE 8080' "$dir/app.tar" "$tag" >/dev/null
}

cmd_run() {
	local image='' cluster='' family='' revision=1 cname=app mode=ok publish=8080 task=
	local env=() extra=()
	while [ $# -gt 0 ]; do
		case $1 in
		--image) need "$1" "${2:-}"; image=$2; shift 2 ;;
		--cluster) need "$1" "${2:-}"; cluster=$2; shift 2 ;;
		--family) need "$1" "${2:-}"; family=$2; shift 2 ;;
		--revision) need "$1" "${2:-}"; revision=$2; shift 2 ;;
		--container-name) need "$1" "${2:-}"; cname=$2; shift 2 ;;
		--task-id) need "$1" "${2:-}"; task=$2; shift 2 ;;
		--mode) need "$1" "${2:-}"; mode=$2; shift 2 ;;
		--publish) need "$1" "${2:-}"; publish=$2; shift 2 ;;
		--env) need "$1" "${2:-}"; env+=(-e "$2"); shift 2 ;;
		--) shift; extra=("$@"); break ;;
		*) usage ;;
		esac
	done
	[ -n "$image" ] && [ -n "$cluster" ] && [ -n "$family" ] || usage

	local name out id
	[ -n "$task" ] || task=$(hex 16)
	name=ecs-$family-$revision-${cname//[^a-zA-Z0-9_.-]/}-$(hex 10)
	local args=(run -d --name "$name"
		-e "STATSAPP_MODE=$mode" ${env[@]+"${env[@]}"}
		-l "com.amazonaws.ecs.cluster=$cluster"
		-l "com.amazonaws.ecs.task-definition-family=$family"
		-l "com.amazonaws.ecs.task-definition-version=$revision"
		-l "com.amazonaws.ecs.container-name=$cname"
		-l "com.amazonaws.ecs.task-arn=arn:aws:ecs:ap-northeast-1:123456789012:task/$cluster/$task")
	[ "$publish" = none ] || args+=(-p "$publish")
	if ! out=$(docker "${args[@]}" ${extra[@]+"${extra[@]}"} "$image" 2>&1); then
		# docker run leaves the container created when it cannot start it
		docker rm -f "$name" >/dev/null 2>&1 || true
		die "docker run $name: $out"
	fi
	id=$(printf '%s\n' "$out" | tail -n 1)
	# e.g. "0.0.0.0:32768" and "[::]:32768", or "127.0.0.1:32823" alone
	local port
	port=$({ docker port "$id" 8080/tcp 2>/dev/null || true; } | awk -F: '$1 !~ /^\[/ && NF == 2 { print $2; exit }')
	echo "$id $name ${port:--}"
}

cmd_rm() {
	local cluster='' image=''
	while [ $# -gt 0 ]; do
		case $1 in
		--cluster) need "$1" "${2:-}"; cluster=$2; shift 2 ;;
		--image) need "$1" "${2:-}"; image=$2; shift 2 ;;
		*) usage ;;
		esac
	done
	[ -n "$cluster" ] || usage
	local ids
	ids=$(docker ps -aq --filter "label=com.amazonaws.ecs.cluster=$cluster")
	[ -z "$ids" ] || docker rm -f $ids >/dev/null
	[ -z "$image" ] || docker rmi "$image" >/dev/null
}

[ $# -gt 0 ] || usage
sub=$1
shift
case $sub in
image) cmd_image "$@" ;;
run) cmd_run "$@" ;;
rm) cmd_rm "$@" ;;
*) usage ;;
esac
