#!/usr/bin/env bash
# Usage: bench/run.sh   (from the repository root, after `make build`)
#
# Full runs of the built plugin, process start to exit, against
#   loop   the shell loop this plugin replaces: docker ps piped through cut, then
#          one mackerel-plugin-gostats process per port ($GOSTATS, v0.91.0);
#   floor  bench/floor: one container list call, parallel GETs, print.
# Scenarios:
#   engine   N = $BENCH_REAL_N (30) statsapp tasks on the Docker daemon at
#            DOCKER_HOST, started as the ECS agent starts them (scripts/ecs-task.sh:
#            -p 8080, ECS labels, a cluster label unique to this run); removed
#            at the end.
#   engine-ip the same tasks with --address container-ip (each task at its
#            container address and private port, no docker-proxy hop), beside
#            the same host-port floor.
#   engine-expvar N tasks serving only Go's expvar, read with --format expvar
#            (plugin only; the log line gives one body of each kind).
#   engine-mixed a mixed fleet of N tasks (a third each: golang-stats-api-handler,
#            client_golang's /metrics, expvar only) read with --format auto, next
#            to a handler-only fleet of N tasks read with the default format, both
#            running at once, in the same rounds (programs "mixed" and "handler";
#            its x/floor column is mixed over handler). The warm-up run probes and
#            remembers each target's format; the measured runs are the runs after
#            it, one request a target, which the log line checks against the
#            tasks' own request counts (statsapp's /statsapp/requests).
#   standin  N = $BENCH_SIZES (100 300 1000) targets: bench/fleet (one process
#            serving the real stats handler on N loopback ports) behind
#            bench/dockerapi (internal/standin's Docker Engine API stand-in,
#            answering with N copies of a container of testdata/containers.json).
#            The loop runs there too, up to N = $BENCH_LOOP_MAX (300).
#   engine-cm the engine tasks read with --container-metrics ("cm" rows),
#            interleaved with the same runs without it ("plugin") and with a
#            floor that also makes one stats call a container ("floorstats"):
#            what the container metrics add to a run.
# The OTLP output (against an OpenTelemetry Collector on loopback, started here
# from $OTELCOL, default .cache/bin/otelcol: `make .cache/bin/otelcol`):
#   engine-otlp the engine tasks read with --output mackerel,otlp, interleaved
#            with the same runs without OTLP ("otlp" and "plugin" rows): the
#            push's cost in wall and CPU time.
#   standin-otlp the same at each stand-in N.
#   otlp-send lib's Go benchmarks of one push of 1,000 targets to the same kind
#            of collector (BenchmarkOTLPEncode1000, BenchmarkOTLPSend1000):
#            export requests, their bytes, gzip and wire bytes, time.
# BENCH_BASELINE, when set, is another build of the plugin (an earlier commit's
# `make build`): the engine, engine-ip and standin scenarios run it too, as
# program "baseline", in the same rounds, with the same arguments, to compare
# a change against what it changes, side by side with the plugin's row.
# BENCH_SCENARIOS selects scenarios (default: all, "engine engine-ip engine-expvar
# engine-mixed engine-otlp engine-cm standin standin-otlp otlp-send").
# Each program runs once to warm up (and to create its state file), then
# $BENCH_RUNS (7) times, interleaved, >= 1 s apart (rates need whole seconds
# between runs, as in production). The table gives medians.
#
# Measured by bench/measure (wait4 rusage): CPU = user + sys of the process and
# of the children it waited for (the loop's sh, docker, cut and gostats
# processes); peak RSS = the largest resident set of any one of those
# processes. Work done by dockerd, docker-proxy or the targets is not counted.
#
# Then profiles the plugin at the largest N: CPU and allocations of in-process
# runs (bench/profile), and package-init cost of the binary (GODEBUG=inittrace=1).
set -euo pipefail

RUNS=${BENCH_RUNS:-7}
REAL_N=${BENCH_REAL_N:-30}
SIZES=${BENCH_SIZES:-100 300 1000}
LOOP_MAX=${BENCH_LOOP_MAX:-300}
SCENARIOS=${BENCH_SCENARIOS:-engine engine-ip engine-expvar engine-mixed engine-otlp engine-cm standin standin-otlp otlp-send}
PLUGIN=$PWD/mackerel-plugin-ecs-gostats
BASELINE=${BENCH_BASELINE:-}
GOSTATS=${GOSTATS:-$PWD/.cache/bin/mackerel-plugin-gostats}
OTELCOL=${OTELCOL:-$PWD/.cache/bin/otelcol}

for f in "$PLUGIN" "$GOSTATS"; do
	[ -x "$f" ] || { echo "$0: $f missing (make build, make .cache/bin/mackerel-plugin-gostats)" >&2; exit 1; }
done
command -v docker >/dev/null || { echo "$0: the docker CLI is needed (apt-get install docker.io)" >&2; exit 1; }
if [ -z "${DOCKER_HOST:-}" ] || ! docker info >/dev/null 2>&1; then
	echo "$0: no Docker daemon answers at DOCKER_HOST='${DOCKER_HOST:-}'" >&2
	exit 1
fi
ENGINE_HOST=$DOCKER_HOST

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
work=$(mktemp -d "${TMPDIR:-/tmp}/ecs-gostats-bench.XXXXXX")
id=$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
cluster=ecs-gostats-bench-$id
image=ecs-gostats-statsapp:bench-$id
pids=()
cleanup() {
	status=$?
	trap - EXIT INT TERM
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	DOCKER_HOST=$ENGINE_HOST scripts/ecs-task.sh rm --cluster "$cluster" --image "$image" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { echo "bench: $*" >&2; }
# want SCENARIO: it is among BENCH_SCENARIOS.
want() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
for sc in $SCENARIOS; do
	case $sc in
	engine | engine-ip | engine-expvar | engine-mixed | engine-otlp | engine-cm | standin | standin-otlp | otlp-send) ;;
	*) echo "$0: unknown scenario $sc in BENCH_SCENARIOS" >&2; exit 2 ;;
	esac
done
if { want engine-otlp || want standin-otlp || want otlp-send; } && [ ! -x "$OTELCOL" ]; then
	echo "$0: $OTELCOL missing (make .cache/bin/otelcol, or OTELCOL=...) for the OTLP scenarios" >&2
	exit 1
fi

log "building bench programs in $work"
mkdir -p "$work/bin" "$work/state"
for p in fleet dockerapi floor measure profile; do
	go build -o "$work/bin/$p" "./bench/$p"
done
export MACKEREL_PLUGIN_WORKDIR=$work/state # state files of the plugin and of gostats
export GOSTATS
# The OTLP runs send no key: the collector is on loopback and wants none.
unset MACKEREL_APIKEY

# The collector of the OTLP scenarios, on a free loopback port: an OTLP/gRPC receiver and the file exporter
# (requests counted from its lines). OTLP_ENDPOINT is where it listens.
OTLP_ENDPOINT=
start_collector() {
	local port
	for _ in $(seq 1 50); do
		port=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
	done
	cat >"$work/otelcol.yaml" <<CONF
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$port
exporters:
  file:
    path: $work/otlp.jsonl
    format: json
service:
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
  pipelines:
    metrics:
      receivers: [otlp]
      exporters: [file]
CONF
	"$OTELCOL" --config "$work/otelcol.yaml" >"$work/otelcol.log" 2>&1 &
	pids+=("$!")
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			OTLP_ENDPOINT=127.0.0.1:$port
			log "collector $OTELCOL listening on $OTLP_ENDPOINT"
			return 0
		fi
		sleep 0.1
	done
	log "the collector did not start:"
	cat "$work/otelcol.log" >&2
	exit 1
}
collector_pid=
if want engine-otlp || want standin-otlp || want otlp-send; then
	start_collector
	collector_pid=${pids[-1]}
fi

# measure SCENARIO PROGRAM N CMD...: one run; appends
# "scenario program N wall cpu rss_kib exit stdout_lines stderr_lines" to results.
measure() {
	local scenario=$1 prog=$2 n=$3
	shift 3
	: >"$work/m"
	"$work/bin/measure" -o "$work/m" "$@" >"$work/out" 2>"$work/err"
	local wall cpu user sys rss rc
	read -r wall cpu user sys rss rc <"$work/m"
	echo "$scenario $prog $n $wall $cpu $rss $rc $(wc -l <"$work/out") $(wc -l <"$work/err")" >>"$work/results"
	if [ "$rc" != 0 ]; then
		log "$scenario $prog N=$n exited $rc:"
		head -n 5 "$work/err" >&2
	fi
}

# The loop as operators ran it, with the label filter of this run.
loop_cmd() {
	echo 'for PORT in $(docker ps --format="{{.Ports}}" --filter '"label=$1"' | cut -f1 -d- | cut -f2 -d:); do "$GOSTATS" -port $PORT -path=/stats -metric-key-prefix=gostats.$PORT; done'
}

# baseline ARGS...: a run of BENCH_BASELINE, with state files of its own.
baseline() { MACKEREL_PLUGIN_WORKDIR=$work/state-baseline "$BASELINE" "$@"; }

# rounds SCENARIO N WITH_LOOP PLUGIN_ARGS...: warm-up, then RUNS interleaved rounds.
rounds() {
	local scenario=$1 n=$2 with_loop=$3
	shift 3
	local label=com.amazonaws.ecs.cluster=$cluster
	local loop
	loop=$(loop_cmd "$label")
	"$PLUGIN" "$@" >/dev/null 2>&1 || true
	[ -z "$BASELINE" ] || baseline "$@" >/dev/null 2>&1 || true
	"$work/bin/floor" -l "$label" >/dev/null
	[ "$with_loop" = no ] || sh -c "$loop" >/dev/null 2>&1 || true
	sleep 1.1
	for i in $(seq 1 "$RUNS"); do
		if [ $((i % 2)) = 1 ]; then
			measure "$scenario" plugin "$n" "$PLUGIN" "$@"
			[ -z "$BASELINE" ] || measure "$scenario" baseline "$n" env MACKEREL_PLUGIN_WORKDIR="$work/state-baseline" "$BASELINE" "$@"
			measure "$scenario" floor "$n" "$work/bin/floor" -l "$label"
		else
			measure "$scenario" floor "$n" "$work/bin/floor" -l "$label"
			[ -z "$BASELINE" ] || measure "$scenario" baseline "$n" env MACKEREL_PLUGIN_WORKDIR="$work/state-baseline" "$BASELINE" "$@"
			measure "$scenario" plugin "$n" "$PLUGIN" "$@"
		fi
		[ "$with_loop" = no ] || measure "$scenario" loop "$n" sh -c "$loop"
		sleep 1.1
	done
}

# --- engine: N real tasks on the Docker daemon ---
# ok_targets N ARGS...: wait until the plugin's --list shows N targets ok.
ok_targets() {
	local n=$1 ok=0
	shift
	for _ in $(seq 1 60); do
		ok=$("$PLUGIN" --list "$@" 2>/dev/null | grep -c ' ok ' || true)
		[ "$ok" -ge "$n" ] && return 0
		sleep 0.5
	done
	log "only $ok of $n tasks answered ($*)"
	return 1
}
# rounds_otlp SCENARIO N PLUGIN_ARGS...: warm-up, then RUNS interleaved rounds of the plugin with PLUGIN_ARGS
# ("plugin") and with --output mackerel,otlp to the collector as well ("otlp"). Logs the requests the
# collector received.
rounds_otlp() {
	local scenario=$1 n=$2
	shift 2
	local otlp=(--output mackerel,otlp --otlp-endpoint "$OTLP_ENDPOINT" --otlp-insecure)
	local before
	before=$(wc -l <"$work/otlp.jsonl" 2>/dev/null || echo 0)
	"$PLUGIN" "$@" >/dev/null 2>&1 || true
	"$PLUGIN" "$@" "${otlp[@]}" >/dev/null 2>&1 || true
	sleep 1.1
	for i in $(seq 1 "$RUNS"); do
		if [ $((i % 2)) = 1 ]; then
			measure "$scenario" plugin "$n" "$PLUGIN" "$@"
			measure "$scenario" otlp "$n" "$PLUGIN" "$@" "${otlp[@]}"
		else
			measure "$scenario" otlp "$n" "$PLUGIN" "$@" "${otlp[@]}"
			measure "$scenario" plugin "$n" "$PLUGIN" "$@"
		fi
		sleep 1.1
	done
	sleep 1.5 # the file exporter writes within a second
	log "$scenario N=$n: the collector received $(($(wc -l <"$work/otlp.jsonl") - before)) export requests from $((RUNS + 1)) runs with OTLP, $(du -k "$work/otlp.jsonl" | cut -f1) KiB of JSON so far"
}

if want engine || want engine-ip || want engine-expvar || want engine-mixed || want engine-otlp || want engine-cm; then
	log "importing $image"
	scripts/ecs-task.sh image "$image"
fi
stats_bytes=-
if want engine || want engine-ip || want engine-otlp || want engine-cm; then
	log "starting $REAL_N tasks (cluster label $cluster)"
	for _ in $(seq 1 "$REAL_N"); do
		scripts/ecs-task.sh run --image "$image" --cluster "$cluster" --family web --container-name web >/dev/null
	done
	ok_targets "$REAL_N" -l "com.amazonaws.ecs.cluster=$cluster"
	loop_ports=$(docker ps --format='{{.Ports}}' --filter "label=com.amazonaws.ecs.cluster=$cluster" | cut -f1 -d- | cut -f2 -d: | sort -n | tr '\n' ' ')
	plugin_ports=$("$PLUGIN" --list -l "com.amazonaws.ecs.cluster=$cluster" | awk '{n = split($4, a, ":"); print a[n]}' | sort -n | tr '\n' ' ')
	if [ "$loop_ports" = "$plugin_ports" ]; then
		log "the loop's docker ps | cut pipeline yields the same $REAL_N ports as the plugin"
	else
		log "ports differ: loop [$loop_ports] plugin [$plugin_ports]"
	fi
	if want engine; then
		log "engine: $REAL_N tasks, $RUNS rounds of plugin, floor and loop"
		rounds engine "$REAL_N" yes -l "com.amazonaws.ecs.cluster=$cluster"
	fi
	# The same tasks reached at their container addresses, as mackerel-agent in a container does: no
	# docker-proxy hop. Its floor column is still the host-port floor.
	if want engine-ip; then
		log "engine-ip: $REAL_N tasks with --address container-ip, $RUNS rounds of plugin and floor"
		rounds engine-ip "$REAL_N" no -l "com.amazonaws.ecs.cluster=$cluster" --address container-ip --key '{family}-{slot}'
	fi
	# The same tasks with the OTLP push as well, beside the same runs without it.
	if want engine-otlp; then
		log "engine-otlp: $REAL_N tasks, $RUNS rounds of the plugin with and without --output mackerel,otlp"
		rounds_otlp engine-otlp "$REAL_N" -l "com.amazonaws.ecs.cluster=$cluster"
	fi
	# The same tasks with their containers' own resource use as well, beside the same runs without it and a
	# floor that makes the same scrapes and stats calls.
	if want engine-cm; then
		log "engine-cm: $REAL_N tasks, $RUNS rounds of the plugin with and without --container-metrics, and the floor with -stats"
		cm_label=com.amazonaws.ecs.cluster=$cluster
		"$PLUGIN" -l "$cm_label" --container-metrics >/dev/null 2>&1 || true
		"$PLUGIN" -l "$cm_label" >/dev/null 2>&1 || true
		sleep 1.1
		for i in $(seq 1 "$RUNS"); do
			if [ $((i % 2)) = 1 ]; then
				measure engine-cm cm "$REAL_N" "$PLUGIN" -l "$cm_label" --container-metrics
				measure engine-cm plugin "$REAL_N" "$PLUGIN" -l "$cm_label"
				measure engine-cm floorstats "$REAL_N" "$work/bin/floor" -stats -l "$cm_label"
			else
				measure engine-cm floorstats "$REAL_N" "$work/bin/floor" -stats -l "$cm_label"
				measure engine-cm plugin "$REAL_N" "$PLUGIN" -l "$cm_label"
				measure engine-cm cm "$REAL_N" "$PLUGIN" -l "$cm_label" --container-metrics
			fi
			sleep 1.1
		done
	fi
	port=$("$PLUGIN" --list -l "com.amazonaws.ecs.cluster=$cluster" | awk 'NR == 1 {n = split($4, a, ":"); print a[n]}')
	stats_bytes=$(curl -s "http://127.0.0.1:$port/stats" | wc -c)
	scripts/ecs-task.sh rm --cluster "$cluster"
fi
# The same number of tasks serving only Go's expvar (/debug/vars), read with --format expvar: plugin
# only (the floor reads /stats). Bodies: one task's answer of each kind.
if want engine-expvar; then
	for _ in $(seq 1 "$REAL_N"); do
		scripts/ecs-task.sh run --image "$image" --cluster "$cluster" --family api --container-name api --mode expvar >/dev/null
	done
	ok_targets "$REAL_N" --format expvar -l "com.amazonaws.ecs.cluster=$cluster"
	port=$("$PLUGIN" --list --format expvar -l "com.amazonaws.ecs.cluster=$cluster" | awk 'NR == 1 {n = split($4, a, ":"); print a[n]}')
	log "engine-expvar: $REAL_N tasks, $RUNS runs of the plugin; one task's body: /stats $stats_bytes bytes, /debug/vars $(curl -s "http://127.0.0.1:$port/debug/vars" | wc -c) bytes"
	"$PLUGIN" --format expvar -l "com.amazonaws.ecs.cluster=$cluster" >/dev/null
	for _ in $(seq 1 "$RUNS"); do
		sleep 1.1
		measure engine-expvar plugin "$REAL_N" "$PLUGIN" --format expvar -l "com.amazonaws.ecs.cluster=$cluster"
	done
	scripts/ecs-task.sh rm --cluster "$cluster"
fi
# A mixed fleet read with --format auto beside a handler-only fleet of the same size, both up at once and
# told apart by a label of the bench's own (bench.fleet), measured in the same rounds.
# fleet_requests FLEET: the requests its tasks have served so far, all paths, by their own counts.
fleet_requests() {
	local total=0 p n
	for p in $(docker ps --filter "label=bench.fleet=$1" --format '{{.Ports}}' | cut -f1 -d- | cut -f2 -d:); do
		n=$(curl -s "http://127.0.0.1:$p/statsapp/requests" | grep -o '[0-9][0-9]*' | awk '{s += $1} END {print s + 0}')
		total=$((total + n))
	done
	echo "$total"
}
if want engine-mixed; then
	third=$((REAL_N / 3))
	mixed_n=$((3 * third))
	log "engine-mixed: starting $mixed_n mixed tasks ($third each of handler, prometheus, expvar) and $mixed_n handler tasks"
	for _ in $(seq 1 "$third"); do
		for mode in ok prometheus expvar; do
			scripts/ecs-task.sh run --image "$image" --cluster "$cluster" --family "mixed-$mode" --container-name app \
				--mode "$mode" -- --label bench.fleet=mixed >/dev/null
		done
	done
	for _ in $(seq 1 "$mixed_n"); do
		scripts/ecs-task.sh run --image "$image" --cluster "$cluster" --family web --container-name web \
			-- --label bench.fleet=handler >/dev/null
	done
	mixed=(-l "com.amazonaws.ecs.cluster=$cluster" -l bench.fleet=mixed --format auto)
	handler=(-l "com.amazonaws.ecs.cluster=$cluster" -l bench.fleet=handler)
	ok_targets "$mixed_n" "${mixed[@]}"
	ok_targets "$mixed_n" "${handler[@]}"
	# warm-up: the mixed fleet's probes, remembered in its state file
	"$PLUGIN" "${mixed[@]}" >/dev/null
	"$PLUGIN" "${handler[@]}" >/dev/null
	sleep 1.1
	before=$(fleet_requests mixed)
	log "engine-mixed: $RUNS rounds of mixed (--format auto) and handler (default format)"
	for i in $(seq 1 "$RUNS"); do
		if [ $((i % 2)) = 1 ]; then
			measure engine-mixed mixed "$mixed_n" "$PLUGIN" "${mixed[@]}"
			measure engine-mixed handler "$mixed_n" "$PLUGIN" "${handler[@]}"
		else
			measure engine-mixed handler "$mixed_n" "$PLUGIN" "${handler[@]}"
			measure engine-mixed mixed "$mixed_n" "$PLUGIN" "${mixed[@]}"
		fi
		sleep 1.1
	done
	log "engine-mixed: the mixed fleet served $(($(fleet_requests mixed) - before)) requests in $RUNS runs over $mixed_n targets (one a target a run: $((RUNS * mixed_n)))"
	scripts/ecs-task.sh rm --cluster "$cluster"
fi

# --- standin: fleet + Docker API stand-in ---
export DOCKER_HOST=unix://$work/api.sock
want standin || want standin-otlp || SIZES=
for n in $SIZES; do
	rm -f "$work/ports" "$work/api.sock"
	"$work/bin/fleet" -n "$n" -ports "$work/ports" &
	fleet=$!
	pids+=("$fleet")
	for _ in $(seq 1 100); do [ -s "$work/ports" ] && break; sleep 0.1; done
	"$work/bin/dockerapi" -socket "$work/api.sock" -template testdata/containers.json -ports "$work/ports" 2>/dev/null &
	api=$!
	pids+=("$api")
	for _ in $(seq 1 100); do [ -S "$work/api.sock" ] && break; sleep 0.1; done
	with_loop=no
	[ "$n" -gt "$LOOP_MAX" ] || with_loop=yes
	if want standin; then
		log "standin: N=$n, $RUNS rounds of plugin, floor$([ $with_loop = no ] || echo ' and loop')"
		rounds standin "$n" "$with_loop"
	fi
	if want standin-otlp; then
		log "standin-otlp: N=$n, $RUNS rounds of the plugin with and without --output mackerel,otlp"
		rounds_otlp standin-otlp "$n"
	fi
	if want standin && [ "$n" = "$(echo $SIZES | awk '{print $NF}')" ]; then
		log "profiling the plugin at N=$n"
		(cd "$work" && bin/profile -runs 20 -tempfile "$work/state/profile.json" >"$work/profile.txt" 2>"$work/profile.err")
		go tool pprof -top -cum -nodecount=40 "$work/bin/profile" "$work/cpu.pprof" 2>/dev/null >"$work/cpu.txt" || true
		go tool pprof -sample_index=alloc_space -top -nodecount=15 "$work/bin/profile" "$work/mem.pprof" 2>/dev/null >"$work/mem.txt" || true
		GODEBUG=inittrace=1 "$PLUGIN" --version 2>"$work/init.txt" >/dev/null
	fi
	kill "$api" "$fleet"
	wait "$api" "$fleet" 2>/dev/null || true
	pids=(${collector_pid:+"$collector_pid"})
done

# --- otlp-send: lib's benchmarks of one push of 1,000 targets to the same kind of collector ---
if want otlp-send; then
	log "otlp-send: go test -bench 'OTLP(Encode|Send)1000' ./lib"
	OTELCOL_BIN=$OTELCOL go test -run '^$' -bench 'OTLP(Encode|Send)1000$' -benchtime 20x -count 1 ./lib >"$work/otlp-bench.txt" 2>&1 ||
		{ log "the OTLP benchmarks failed:"; cat "$work/otlp-bench.txt" >&2; exit 1; }
fi

# --- table ---
median() { sort -g | awk '{v[NR] = $1} END {if (NR) print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
col() { awk -v s="$1" -v p="$2" -v n="$3" -v c="$4" '$1 == s && $2 == p && $3 == n {print $c}' "$work/results" | median; }
# pair S P N R C: the median over the rounds of P's column C over R's in the same round (the i-th
# measured run of each program is of round i). On a shared machine whose speed drifts from round to
# round, this ratio moves less than the ratio of the two medians.
pair() {
	paste -d' ' <(awk -v s="$1" -v p="$2" -v n="$3" -v c="$5" '$1 == s && $2 == p && $3 == n {print $c}' "$work/results") \
		<(awk -v s="$1" -v p="$4" -v n="$3" -v c="$5" '$1 == s && $2 == p && $3 == n {print $c}' "$work/results") |
		awk 'NF == 2 && $2 > 0 {print $1 / $2}' | median
}

echo
echo "Full runs, process start to exit; median of $RUNS runs each (shared 2-core machine: medians, not minima)."
echo "CPU = user+sys incl. waited-for children; RSS = largest single process; lines, warns = stdout, stderr lines;"
echo "fails = runs with a non-zero exit. Lines per target: plugin 17, loop 15, floor every numeric field (23)."
echo "Load average at start: $load_before; at end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo "x/floor: wall time of the plugin (or loop) over the floor's, mixed over handler; cpu/floor: the same of CPU time,"
echo "paired (the median of each round's ratio); loop/x: how many times less than the loop."
printf '%-13s %-10s %5s %9s %9s %9s %7s %6s %6s %8s %9s %8s %8s\n' \
	scenario program N wall_s cpu_s rss_MiB lines warns fails x/floor cpu/floor loop/wall loop/cpu
for key in $(awk '{print $1 ":" $3}' "$work/results" | awk '!seen[$0]++'); do
	s=${key%%:*} n=${key##*:}
	floor_wall=$(col "$s" floor "$n" 4)
	loop_wall=$(col "$s" loop "$n" 4)
	loop_cpu=$(col "$s" loop "$n" 5)
	for p in plugin baseline otlp cm floor floorstats loop handler mixed; do
		wall=$(col "$s" "$p" "$n" 4)
		[ -n "$wall" ] || continue
		ref=floor
		[ "$p" != mixed ] || { ref=handler; floor_wall=$(col "$s" handler "$n" 4); } # engine-mixed: mixed over handler
		[ "$p" != floorstats ] || ref=- # its own floor is in the engine-cm line below
		cf=-
		if [ "$p" != floor ] && [ "$ref" != - ]; then
			cf=$(pair "$s" "$p" "$n" "$ref" 5)
			[ -n "$cf" ] && cf=$(printf '%.2f' "$cf") || cf=-
		fi
		cpu=$(col "$s" "$p" "$n" 5)
		rss=$(col "$s" "$p" "$n" 6)
		lines=$(col "$s" "$p" "$n" 8)
		warns=$(col "$s" "$p" "$n" 9)
		fails=$(awk -v s="$s" -v p="$p" -v n="$n" '$1 == s && $2 == p && $3 == n && $7 != 0' "$work/results" | wc -l)
		awk -v s="$s" -v p="$p" -v n="$n" -v w="$wall" -v c="$cpu" -v r="$rss" -v l="$lines" -v e="$warns" -v f="$fails" \
			-v fw="$floor_wall" -v lw="$loop_wall" -v lc="$loop_cpu" -v cf="$cf" 'BEGIN {
			xf = (p != "floor" && fw != "") ? sprintf("%.2f", w / fw) : "-"
			lw2 = (p != "loop" && lw != "") ? sprintf("%.1f", lw / w) : "-"
			lc2 = (p != "loop" && lc != "") ? sprintf("%.1f", lc / c) : "-"
			printf "%-13s %-10s %5d %9.3f %9.3f %9.1f %7d %6d %6d %8s %9s %8s %8s\n", s, p, n, w, c, r / 1024, l, e, f, xf, cf, lw2, lc2
		}'
	done
done

if grep -q '^engine-mixed ' "$work/results"; then
	n=$(awk '$1 == "engine-mixed" {print $3; exit}' "$work/results")
	awk -v mw="$(col engine-mixed mixed "$n" 4)" -v hw="$(col engine-mixed handler "$n" 4)" \
		-v mc="$(col engine-mixed mixed "$n" 5)" -v hc="$(col engine-mixed handler "$n" 5)" -v n="$n" \
		-v pc="$(pair engine-mixed mixed "$n" handler 5)" 'BEGIN {
		printf "engine-mixed: %d mixed tasks with --format auto over %d handler tasks, same rounds: wall %.2fx, CPU %.2fx (paired %.2fx; target: at most 1.2x)\n", n, n, mw / hw, mc / hc, pc
	}'
fi

# The plugin's CPU over the floor's, where both ran: by medians and paired.
for key in $(awk '$2 == "floor" {print $1 ":" $3}' "$work/results" | awk '!seen[$0]++'); do
	s=${key%%:*} n=${key##*:}
	[ -n "$(col "$s" plugin "$n" 5)" ] || continue
	awk -v s="$s" -v n="$n" -v c1="$(col "$s" plugin "$n" 5)" -v c0="$(col "$s" floor "$n" 5)" \
		-v pc="$(pair "$s" plugin "$n" floor 5)" 'BEGIN {
		printf "%s N=%d: plugin over floor: CPU %.2fx (%+.1f ms; paired %.2fx)\n", s, n, c1 / c0, (c1 - c0) * 1000, pc
	}'
done
# The OTLP scenarios: each run with the push over the same rounds' runs without it.
for key in $(awk '$2 == "baseline" {print $1 ":" $3}' "$work/results" | awk '!seen[$0]++'); do
	s=${key%%:*} n=${key##*:}
	awk -v s="$s" -v n="$n" -v w1="$(col "$s" plugin "$n" 4)" -v w0="$(col "$s" baseline "$n" 4)" \
		-v c1="$(col "$s" plugin "$n" 5)" -v c0="$(col "$s" baseline "$n" 5)" \
		-v r1="$(col "$s" plugin "$n" 6)" -v r0="$(col "$s" baseline "$n" 6)" -v pc="$(pair "$s" plugin "$n" baseline 5)" 'BEGIN {
		printf "%s N=%d: plugin over baseline: wall %.3fx, CPU %.3fx (paired %.3fx), peak RSS %.3fx (%+.1f MiB)\n",
			s, n, w1 / w0, c1 / c0, pc, r1 / r0, (r1 - r0) / 1024
	}'
done
for key in $(awk '$2 == "cm" {print $1 ":" $3}' "$work/results" | awk '!seen[$0]++'); do
	s=${key%%:*} n=${key##*:}
	awk -v s="$s" -v n="$n" -v w1="$(col "$s" cm "$n" 4)" -v w0="$(col "$s" plugin "$n" 4)" \
		-v c1="$(col "$s" cm "$n" 5)" -v cf="$(col "$s" floorstats "$n" 5)" \
		-v r1="$(col "$s" cm "$n" 6)" -v r0="$(col "$s" plugin "$n" 6)" -v pc="$(pair "$s" cm "$n" floorstats 5)" 'BEGIN {
		printf "%s N=%d: --container-metrics over without: wall %+.3f s; its CPU over the floor with -stats: %.2fx (paired %.2fx); peak RSS %.1f MiB (%+.1f)\n",
			s, n, w1 - w0, c1 / cf, pc, r1 / 1024, (r1 - r0) / 1024
	}'
done
for key in $(awk '$2 == "otlp" {print $1 ":" $3}' "$work/results" | awk '!seen[$0]++'); do
	s=${key%%:*} n=${key##*:}
	awk -v s="$s" -v n="$n" -v w1="$(col "$s" otlp "$n" 4)" -v w0="$(col "$s" plugin "$n" 4)" \
		-v c1="$(col "$s" otlp "$n" 5)" -v c0="$(col "$s" plugin "$n" 5)" \
		-v r1="$(col "$s" otlp "$n" 6)" -v r0="$(col "$s" plugin "$n" 6)" -v pc="$(pair "$s" otlp "$n" plugin 5)" 'BEGIN {
		printf "%s N=%d: --output mackerel,otlp over mackerel: wall %.2fx (%+.1f ms), CPU %.2fx (%+.1f ms; paired %.2fx), peak RSS %+.1f MiB\n",
			s, n, w1 / w0, (w1 - w0) * 1000, c1 / c0, (c1 - c0) * 1000, pc, (r1 - r0) / 1024
	}'
done
if [ -s "$work/otlp-bench.txt" ]; then
	echo
	echo "One push of 1,000 targets of the handler (lib, go test -bench, 20 iterations; Send: a new plain-text connection each):"
	grep -E '^(Benchmark|goos|goarch|cpu)' "$work/otlp-bench.txt"
fi

if [ -s "$work/cpu.txt" ]; then
	echo
	echo "Profile, plugin at N=$(echo $SIZES | awk '{print $NF}'): $(cat "$work/profile.txt")"
	echo "CPU (top 40 by cumulative time; samples include the scrape goroutines and the GC):"
	sed -n '/flat%/,$p' "$work/cpu.txt"
	echo "Allocated bytes (top 15):"
	sed -n '/flat%/,$p' "$work/mem.txt"
	echo "Package init (GODEBUG=inittrace=1, --version run): $(awk '/^init/ {n++; ms += $5; kb += $8} END {printf "%d packages, %.2f ms, %.0f KiB allocated", n, ms, kb / 1024 * 1}' "$work/init.txt")"
	echo "Slowest inits:"
	awk '/^init/' "$work/init.txt" | sort -k5 -g -r | awk 'NR <= 8'
fi
