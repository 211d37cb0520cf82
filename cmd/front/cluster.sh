#!/usr/bin/env bash
# Starts a development cluster as local processes: Redis, 2 fronts and 3
# engine nodes (the demo model), until Ctrl-C or SIGTERM, which stops them
# all. A process that exits on its own is reported and the others go on.
# The API key and the JWT secret are generated once into $DIR and reused.
#
# usage: cmd/front/cluster.sh   (BIN=build/bin DIR=build/cluster CAPACITY=4 REDIS_PORT=6390 FRONT_HOST=127.0.0.1)
# A Python model's nodes: NODE_CMD="python3 -m framewire serve model.py" MODEL=<its name>.
set -euo pipefail
BIN=${BIN:-build/bin}
DIR=${DIR:-build/cluster}
CAPACITY=${CAPACITY:-4}
REDIS_PORT=${REDIS_PORT:-6390}
FRONT_PORTS=${FRONT_PORTS:-"8090 8091"}
NODE_PORTS=${NODE_PORTS:-"8100 8101 8102"}
NODE_CMD=${NODE_CMD:-"$BIN/framewire"}
MODEL=${MODEL:-framewire-demo}
# The fronts listen on loopback; FRONT_HOST=0.0.0.0 serves other hosts too.
FRONT_HOST=${FRONT_HOST:-127.0.0.1}
mkdir -p "$DIR"
[ -s "$DIR/jwt-secret" ] || head -c 48 /dev/urandom | base64 -w0 >"$DIR/jwt-secret"
[ -s "$DIR/api-keys" ] || echo "dev:$(head -c 24 /dev/urandom | base64 -w0 | tr '+/' '-_')" >"$DIR/api-keys"
chmod 600 "$DIR/jwt-secret" "$DIR/api-keys"

# running maps the pid of each process still running to its name (its
# log is $DIR/<name>.log).
declare -A running=()
spawn() { # spawn NAME COMMAND...: runs COMMAND in the background, logging to $DIR/NAME.log
	local name=$1
	shift
	"$@" >"$DIR/$name.log" 2>&1 &
	running[$!]=$name
}
stop() {
	trap - EXIT INT TERM
	echo "cluster: stopping"
	for p in "${!running[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	wait || true
	exit 0
}
trap stop EXIT INT TERM

spawn redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
for p in $NODE_PORTS; do
	# shellcheck disable=SC2086 # NODE_CMD is a command line
	spawn "node-$p" $NODE_CMD -mode node -addr "127.0.0.1:$p" -node-id "node-$p" -redis "127.0.0.1:$REDIS_PORT" \
		-jwt-secret-file "$DIR/jwt-secret" -capacity "$CAPACITY"
done
for p in $FRONT_PORTS; do
	# No load balancer watches /readyz here: Ctrl-C need not wait for one.
	spawn "front-$p" "$BIN/front" -addr "$FRONT_HOST:$p" -redis "127.0.0.1:$REDIS_PORT" -jwt-secret-file "$DIR/jwt-secret" \
		-keys-file "$DIR/api-keys" -models "$MODEL" -drain-delay 0s
done
key=$(cut -d: -f2 "$DIR/api-keys")
cat <<MSG
cluster: Redis :$REDIS_PORT, fronts $(for p in $FRONT_PORTS; do printf 'http://localhost:%s ' "$p"; done)on $FRONT_HOST, nodes $NODE_PORTS (capacity $CAPACITY each); logs in $DIR
  token:  curl -s -X POST -H 'Reactor-API-Key: $key' http://localhost:${FRONT_PORTS%% *}/tokens
  SDK:    new Reactor({modelName: "$MODEL", apiUrl: "http://localhost:${FRONT_PORTS%% *}"}).connect(jwt)
Ctrl-C stops everything.
MSG
# A process that exits (a node killed or drained, a front that fails) is
# reported and the others keep running: fault drills on this cluster
# need the rest of it.
while [ ${#running[@]} -gt 0 ]; do
	pid= status=0
	wait -n -p pid || status=$?
	[ -n "$pid" ] || break
	echo "cluster: ${running[$pid]} (pid $pid) exited with status $status; the others keep running (log: $DIR/${running[$pid]}.log)"
	unset "running[$pid]"
done
echo "cluster: every process has exited"
