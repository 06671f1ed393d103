#!/usr/bin/env bash
# The compose cluster's commands (the Makefile's compose-* targets call these):
#   deploy/compose.sh up | exec | logs COMPONENT | down | rm | ps
# Runs docker-compose (v1) or `docker compose` (v2) against whatever engine $DOCKER_HOST names
# (default: the local dockerd). The project is $DTM_COMPOSE_PROJECT (default dtm), the image
# $DTM_IMAGE (default dtm:local: `make image`), the published port $DTM_HANDLER_PORT (7480).
# $DTM_COMPOSE_STATE (default run/compose/) holds the credential (cluster.env) and the user
# `local`'s token (cli.env, local.token), all mode 0600; `rm` deletes them with the data.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
project=${DTM_COMPOSE_PROJECT:-dtm}
state=${DTM_COMPOSE_STATE:-run/compose}
image=${DTM_IMAGE:-dtm:local}
port=${DTM_HANDLER_PORT:-7480}
export DTM_IMAGE=$image DTM_HANDLER_PORT=$port DTM_COMPOSE_STATE=$state

compose() {
    if command -v docker-compose >/dev/null 2>&1; then
        docker-compose -p "$project" -f compose.yaml "$@"
    else
        docker compose -p "$project" -f compose.yaml "$@"
    fi
}

# The env files compose.yaml names must exist for every compose command.
ensure_state() {
    (umask 077 && mkdir -p "$state")
    if [[ ! -s $state/cluster.env ]]; then
        (umask 077 && python3 -c 'import secrets; print("DTM_CLUSTER_SECRET=" + secrets.token_urlsafe(32))' \
            >"$state/cluster.env")
    fi
    [[ -e $state/cli.env ]] || (umask 077 && : >"$state/cli.env")
}

# Wait (with a deadline) until SERVICE's container reports healthy.
wait_healthy() {
    local service=$1 deadline=$((SECONDS + ${2:-120})) id status
    while ((SECONDS < deadline)); do
        id=$(compose ps -q "$service" 2>/dev/null || true)
        status=$( [[ -n $id ]] && docker inspect -f '{{.State.Health.Status}}' "$id" 2>/dev/null || true)
        [[ $status == healthy ]] && return 0
        sleep 0.5
    done
    echo "compose: $service is not healthy (${status:-no container}); its last lines:" >&2
    compose logs --tail 20 "$service" >&2 || true
    return 1
}

up() {
    ensure_state
    if ! docker image inspect "$image" >/dev/null 2>&1; then
        echo "compose: no image $image on this engine: run \`make image\` first" >&2
        exit 1
    fi
    compose up -d
    wait_healthy handler
    if ! grep -q '^TODO_TOKEN=' "$state/cli.env"; then
        local token
        token=$(compose exec -T handler dtm user add local --config /etc/dtm/cluster.toml 2>/dev/null | head -1)
        [[ -n $token ]] || { echo "compose: could not add the user local" >&2; exit 1; }
        (umask 077 && echo "TODO_TOKEN=$token" >"$state/cli.env" && echo "$token" >"$state/local.token")
    fi
    echo "dtm is up: the handler is published on http://127.0.0.1:$port"
    echo "  make compose-exec                     (the todo shell, in a container)"
    echo "  TODO_URL=http://127.0.0.1:$port TODO_TOKEN=\$(cat $state/local.token) .venv/bin/todo list"
}

case ${1:-} in
up) up ;;
exec) ensure_state; compose run --rm cli "${@:2}" ;;
logs)
    ensure_state
    service=${2:?which component}
    [[ $service == loadbalancer || $service == loadbrancer ]] && service=balancer # as make logs-*
    compose logs --tail "${TAIL:-200}" ${FOLLOW:+--follow} "$service"
    ;;
ps) ensure_state; compose ps ;;
down) ensure_state; compose down --timeout 15 ;;
rm) ensure_state; compose down --volumes --timeout 15; rm -rf "$state" ;;
*) echo "usage: deploy/compose.sh up|exec|logs COMPONENT|ps|down|rm" >&2; exit 2 ;;
esac
