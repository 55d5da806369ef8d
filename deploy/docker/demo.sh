#!/usr/bin/env bash
# The 3-node demo of the atrd image with docker compose (deploy/docker/compose.yml).
#
#   demo.sh up      build the image and the example tools, start node0, then node1 and node2
#                   bootstrapping from it; publish `add` on node0, find it from node2, invoke it
#                   from node2 (node0 runs it in Docker) and check the receipt
#   demo.sh check   up, then down (what the test runs); exit status 0 only when all worked
#   demo.sh down    remove the containers, the network and the volumes
#
# Needs: docker, docker compose (the plugin) or docker-compose, curl, python3, cargo.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
project="${ATR_DEMO_PROJECT:-atr-demo}"
export ATR_DEMO_SUBNET="${ATR_DEMO_SUBNET:-10.213.77}"
export ATR_IMAGE="${ATR_IMAGE:-atrd:latest}"

if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose >/dev/null; then
    compose=(docker-compose)
else
    echo "demo.sh: needs docker compose or docker-compose" >&2
    exit 1
fi
dc() { "${compose[@]}" -p "$project" -f "$here/compose.yml" "$@"; }

api() { echo "http://127.0.0.1:$((17878 + $1))"; }

# The API token of node N, read out of its container (the image has no shell: docker cp).
token() { docker cp "$(dc ps -q "node$1")":/data/api.token - | tar -xO; }

wait_for() { # wait_for SECONDS WHAT COMMAND...
    local deadline=$((SECONDS + $1)) what="$2"
    shift 2
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "demo.sh: timed out waiting for $what" >&2
            dc logs --tail 40 >&2 || true
            return 1
        fi
        sleep 0.5
    done
}

up() {
    "$here/build.sh" "$ATR_IMAGE"
    docker image inspect atr-example-tools:latest >/dev/null 2>&1 ||
        (cd "$root" && cargo run --quiet --locked -p atr-testnet -- tools-image)
    export ATR_DOCKER_GID
    ATR_DOCKER_GID="$(stat -c %g /var/run/docker.sock)"
    export ATR_NODE0_ID=unset
    dc up -d node0
    wait_for 60 "node0" curl -fsS "$(api 0)/health"
    ATR_NODE0_ID="$(curl -fsS "$(api 0)/v1/trust" | python3 -c 'import json,sys; print(json.load(sys.stdin)["node"])')"
    echo "node0 is $ATR_NODE0_ID"
    dc up -d node1 node2
    for n in 1 2; do wait_for 60 "node$n" curl -fsS "$(api $n)/health"; done

    local t0 t2 id
    t0="$(token 0)"
    t2="$(token 2)"
    wait_for 60 "node2 to connect" sh -c "curl -fsS -H 'Authorization: Bearer $t2' $(api 2)/v1/peers | grep -q peer_id"
    id="$(python3 -c 'import json,sys,tomllib; print(json.dumps({"manifest": tomllib.load(open(sys.argv[1],"rb")), "file": "add.toml"}))' \
        "$root/sdk/examples/manifests/add.toml" |
        curl -fsS -H "Authorization: Bearer $t0" -H 'Content-Type: application/json' --data-binary @- "$(api 0)/v1/publish" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
    echo "node0 published add: $id"
    wait_for 60 "node2 to hold the spec" curl -fsS "$(api 2)/v1/specs/$id"
    curl -fsS "$(api 2)/v1/find?tag=math&view=compact" | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print("node2 finds:", [x["name"] for x in r])'
    local out
    out="$(curl -fsS -H "Authorization: Bearer $t2" -H 'Content-Type: application/json' \
        --data "{\"id\": \"$id\", \"input\": {\"a\": 2, \"b\": 40}}" "$(api 2)/v1/invoke")"
    python3 - "$out" "$ATR_NODE0_ID" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
assert r["output"] == 42, r
assert r["status"] == "ok", r
assert r["provider"] == sys.argv[2], (r["provider"], sys.argv[2])
assert r["receipt"]["provider"] == sys.argv[2]
print("node2 invoked add on node0: 2 + 40 =", r["output"], "with a verified receipt signed by", r["provider"])
PY
    echo "explorer: $(api 0)/explorer  $(api 2)/explorer"
}

down() { dc down -v --remove-orphans; }

case "${1:-up}" in
up) up ;;
down) down ;;
check)
    trap down EXIT
    up
    ;;
*)
    echo "usage: demo.sh up|check|down" >&2
    exit 2
    ;;
esac
