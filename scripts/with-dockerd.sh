#!/usr/bin/env bash
# Usage: scripts/with-dockerd.sh CMD [ARGS...]
#
# Runs CMD with DOCKER_HOST pointing at a Docker daemon that answers.
# If none answers at $DOCKER_HOST (default unix:///var/run/docker.sock), it
# installs docker.io when dockerd is missing (root only), starts a private
# dockerd (own socket, data-root and exec-root under a temp dir), runs CMD,
# then stops that dockerd. CMD's exit status is passed through.
set -eu

if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARGS...]" >&2
	exit 2
fi

export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"

answers() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && answers; then
	exec "$@"
fi

if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "$0: no Docker daemon answers at $DOCKER_HOST and dockerd is not installed;" \
			"install docker.io (apt-get install docker.io) or run as root" >&2
		exit 1
	fi
	echo "$0: installing docker.io" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq docker.io >/dev/null
	# where the package starts a system daemon, use that one
	if answers; then exec "$@"; fi
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "$0: no Docker daemon answers at $DOCKER_HOST and starting one needs root" >&2
	exit 1
fi

# a short path: unix socket paths (ours and containerd's under exec-root) are limited to 108 bytes
dir=$(mktemp -d /tmp/with-dockerd.XXXXXX)
log="$dir/dockerd.log"
dockerd_pid=
stop() {
	status=$?
	trap - EXIT INT TERM
	if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
		kill -TERM "$dockerd_pid" 2>/dev/null || true
		wait "$dockerd_pid" 2>/dev/null || true
	fi
	# unmount whatever a crashed dockerd may have left (netns, shm), deepest first
	awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r m; do umount -l "$m" || true; done
	rm -rf "$dir" || echo "$0: could not remove $dir" >&2
	exit "$status"
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export DOCKER_HOST="unix://$dir/docker.sock"
echo "$0: starting dockerd at $DOCKER_HOST (log: $log)" >&2
dockerd --iptables=false --storage-driver=vfs \
	-H "$DOCKER_HOST" --data-root "$dir/data" --exec-root "$dir/exec" \
	--pidfile "$dir/dockerd.pid" >"$log" 2>&1 &
dockerd_pid=$!

fail() {
	kept="${TMPDIR:-/tmp}/with-dockerd.log"
	cp "$log" "$kept" 2>/dev/null || kept=$log
	echo "$0: $1; last lines of the dockerd log ($kept):" >&2
	tail -n 20 "$kept" >&2
	exit 1
}
for _ in $(seq 1 60); do
	answers && break
	kill -0 "$dockerd_pid" 2>/dev/null || fail "dockerd exited"
	sleep 0.5
done
answers || fail "dockerd did not answer at $DOCKER_HOST within 30s"

"$@" && status=0 || status=$?
exit "$status"
