#!/usr/bin/env bash
# `make deploy-test`: build the image, run the compose scenario, run the swarm scenario (three
# engines in three network-namespace hosts: deploy/swarm/test.sh), check the Kubernetes manifests
# and the systemd units, and boot the units in systemd-nspawn (deploy/systemd/boot-test.sh, when
# systemd-nspawn is installed). Every Docker engine runs inside a network namespace of its own (see
# deploy/engine.sh), so the machine's firewall and network are never changed; the engines, their
# namespaces, containers, volumes and images, and the scratch files are removed on every exit.
# Skipped, with the reason, without root or without DEPLOY_TEST_MIN_FREE_MB of free disk.
# The last line is "deploy-test: N passed, M failed" (or "... skipped: why").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
python=${PYTHON:-$repo/.venv/bin/python}
min_free_mb=${DEPLOY_TEST_MIN_FREE_MB:-2048}
scratch_parent=${TMPDIR:-/tmp}

skip() {
    echo "deploy-test: skipped: $*"
    exit 0
}
((EUID == 0)) || skip "needs root (a Docker engine in a network namespace of its own)"
free_mb=$(df -Pm "$scratch_parent" | awk 'NR == 2 {print $4}')
((free_mb >= min_free_mb)) || skip "needs ${min_free_mb} MB free in $scratch_parent, has ${free_mb} MB"
missing=()
for tool in dockerd docker docker-compose mmdebstrap ip nsenter systemd-analyze; do
    command -v "$tool" >/dev/null 2>&1 || [[ -x /usr/sbin/$tool ]] || missing+=("$tool")
done
if ((${#missing[@]})); then
    echo "deploy-test: missing ${missing[*]} (Debian: docker.io docker-compose mmdebstrap" \
        "iproute2 util-linux systemd; .ci/run installs them)" >&2
    echo "deploy-test: 0 passed, 1 failed"
    exit 1
fi

work=$(mktemp -d "$scratch_parent/dtm-deploy-test.XXXXXX")
engine=$work/engine
passed=0
failed=0
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    if [[ -n ${boot_root_pid:-} ]]; then # its own process group: mmdebstrap stops too
        kill -TERM -- "-$boot_root_pid" 2>/dev/null
        wait "$boot_root_pid" 2>/dev/null
    fi
    if [[ -S $engine/docker.sock ]]; then
        DTM_COMPOSE_STATE=$work/compose deploy/compose.sh rm >/dev/null 2>&1
    fi
    deploy/engine.sh stop "$engine"
    [[ -d $work/swarm ]] && deploy/swarm/test.sh clean "$work/swarm"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# step NAME FUNCTION: run one scenario in a subshell that stops at its first failing command,
# print its time, and count it; `ok` is 0 if it passed. Never called as a condition: `set -e`
# would be off inside it.
ok=0
step() {
    local name=$1 t0=$SECONDS
    echo "deploy-test: $name ..."
    set +e
    (set -e; "$2")
    ok=$?
    set -e
    if ((ok == 0)); then
        passed=$((passed + 1))
        echo "deploy-test: $name: passed in $((SECONDS - t0)) s"
    else
        failed=$((failed + 1))
        echo "deploy-test: $name: FAILED after $((SECONDS - t0)) s"
    fi
}

# ---------------------------------------------------------------- the image

image() {
    BASE_TAR=${DEPLOY_TEST_BASE_TAR:-} deploy/image.sh dtm:test
    local user health
    user=$(docker image inspect -f '{{.Config.User}}' dtm:test)
    health=$(docker image inspect -f '{{json .Config.Healthcheck.Test}}' dtm:test)
    [[ $user == 10001:10001 ]] || { echo "the image runs as '$user', not the dtm user"; return 1; }
    [[ $health == '["CMD","dtm","health"]' ]] || { echo "HEALTHCHECK is $health"; return 1; }
    docker run --rm --entrypoint todo dtm:test --help >/dev/null
}

# ---------------------------------------------------------------- compose

compose() { docker-compose -p dtmtest -f "$repo/compose.yaml" "$@"; }
in_engine() { nsenter --net="/run/netns/$DTM_ENGINE_NS" "$@"; }
todo_host() { # the machine's own todo, through the published port
    TODO_TOKEN=$(cat "$DTM_COMPOSE_STATE/local.token") in_engine "$repo/.venv/bin/todo" "$@"
}

live_rows() { # live_rows store1: the node's live row count, asked inside its container
    local port=$((7410 + ${1#store}))
    compose exec -T "$1" python3 -c "import json, os, urllib.request as u
r = u.Request('http://127.0.0.1:$port/v1/status',
              headers={'Authorization': 'Bearer ' + os.environ['DTM_CLUSTER_SECRET']})
print(json.load(u.urlopen(r, timeout=5))['live_rows'])" 2>/dev/null || echo "?"
}

wait_rows() { # wait_rows store1 3: until the node holds 3 live rows (deadline 60 s)
    local deadline=$((SECONDS + 60)) got
    while ((SECONDS < deadline)); do
        got=$(live_rows "$1")
        [[ $got == "$2" ]] && return 0
        sleep 0.5
    done
    echo "$1 holds $got live rows, not $2; the sync's last lines:"
    compose logs --tail 20 sync
    return 1
}

clean_stop() { # clean_stop SERVICE: it stopped on SIGTERM, not killed after docker's 10 s
    local code
    code=$(docker inspect -f '{{.State.ExitCode}}' "$(compose ps -q "$1")")
    if [[ $code != 0 ]]; then
        echo "$1 exited $code on stop (137: killed, SIGTERM not handled in time); its last lines:"
        docker logs --timestamps --tail 15 "$(compose ps -q "$1")" 2>&1
        return 1
    fi
}

export DTM_COMPOSE_PROJECT=dtmtest DTM_COMPOSE_STATE=$work/compose DTM_IMAGE=dtm:test
export DTM_HANDLER_PORT=7480 # inside the engine's own namespace: no clash with the machine
export TODO_URL=http://127.0.0.1:$DTM_HANDLER_PORT

compose_up() {
    deploy/compose.sh up >"$work/up.log" 2>&1 || { cat "$work/up.log"; return 1; }
}

compose_smoke() {
    todo_host add Buy groceries >/dev/null
    todo_host add Call mom >/dev/null
    todo_host list | grep 'Call mom' >/dev/null || { echo "todo list through the published port"; return 1; }
    wait_rows store1 2 && wait_rows store2 2
}

compose_stopped_node() {
    compose stop store1 >/dev/null 2>&1
    clean_stop store1
    todo_host add Written while store1 is stopped >/dev/null
    compose start store1 >/dev/null 2>&1
    wait_rows store1 3 && wait_rows store2 3
}

compose_paused_node() {
    docker pause "$(compose ps -q store2)" >/dev/null
    todo_host add Written while store2 is paused >/dev/null
    docker unpause "$(compose ps -q store2)" >/dev/null
    wait_rows store2 4 && wait_rows store1 4
}

compose_down() {
    # The nodes first: once the other containers are gone their names no longer resolve, and in
    # this namespace (no uplink) such a lookup fails only after 10 s; a node's clock watch asks
    # for them, and its exit waits for the lookup (measured: 10-15 s instead of 1 s).
    compose stop store1 store2 >/dev/null 2>&1
    compose stop >/dev/null 2>&1
    for service in store1 store2 balancer handler sync; do clean_stop "$service" || return 1; done
    deploy/compose.sh rm >/dev/null 2>&1
    [[ -z $(docker volume ls -q) ]] || { echo "volumes left: $(docker volume ls -q)"; return 1; }
}

# ---------------------------------------------------------------- swarm (deploy/swarm/test.sh)

swarm_up() { deploy/swarm/test.sh up "$work/swarm" "$work/image.tar"; }
swarm_replication() { deploy/swarm/test.sh replication "$work/swarm"; }
swarm_balancer() { deploy/swarm/test.sh balancer "$work/swarm"; }
swarm_partition() { deploy/swarm/test.sh partition "$work/swarm"; }
swarm_reschedule() { deploy/swarm/test.sh reschedule "$work/swarm"; }
swarm_down() { deploy/swarm/test.sh down "$work/swarm"; }

# ---------------------------------------------------------------- manifests and units

boot() {
    local tar=${DEPLOY_TEST_BOOT_TAR:-$work/boot-root.tar}
    if [[ ! -s $tar ]]; then
        echo "building the systemd root file system failed:"
        tail -20 "$work/boot-root.log"
        return 1
    fi
    BOOT_ROOT_TAR=$tar deploy/systemd/boot-test.sh
}

# The manifests' and compose file's agreement with the code, kubernetes-validate and
# systemd-analyze verify (tests/deploy/test_manifests.py: fails if kubernetes-validate is missing).
manifests() {
    if ! "$python" -c 'import kubernetes_validate'; then
        echo "no kubernetes-validate: pip install '.[deploy]'"
        return 1
    fi
    "$python" -m pytest -q -p no:cacheprovider "$repo/tests/deploy"
}

# The systemd test's root file system downloads while the image builds and compose runs.
boot_root_pid=
if command -v systemd-nspawn >/dev/null 2>&1 && [[ -z ${DEPLOY_TEST_BOOT_TAR:-} ]]; then
    mkdir -p "$work/boot-tmp"
    TMPDIR=$work/boot-tmp setsid deploy/systemd/boot-test.sh --root "$work/boot-root.tar" \
        >"$work/boot-root.log" 2>&1 &
    boot_root_pid=$!
fi
eval "$(deploy/engine.sh start "$engine")"
export DOCKER_HOST DTM_ENGINE_NS
step image image
if ((ok == 0)); then
    step "compose up (5 services healthy, the user local added)" compose_up
    if ((ok == 0)); then
        step "compose smoke (todo add/list through the published port, rows on both nodes)" \
            compose_smoke
        step "compose stopped node converges" compose_stopped_node
        step "compose paused node converges" compose_paused_node
        step "compose down (every component stops on SIGTERM, volumes removed)" compose_down
    fi
    if ! docker save -o "$work/image.tar" dtm:test; then # for the swarm's engines: no registry
        echo "deploy-test: docker save failed: no swarm scenario"
        failed=$((failed + 1))
    fi
fi
deploy/engine.sh stop "$engine" # the engine, its images and volumes are no longer needed
if [[ -s $work/image.tar ]]; then
    step "swarm up (3 engines in 3 namespace hosts, one swarm, the stack's 7 tasks healthy)" swarm_up
    if ((ok == 0)); then
        step "swarm: writes replicate across hosts" swarm_replication
        step "swarm: a balancer task killed, the handler keeps serving" swarm_balancer
        step "swarm: a host partitioned and healed converges" swarm_partition
        step "swarm: a node moved to another host (new address) is replicated again" \
            swarm_reschedule
    fi
    step "swarm down (stack removed, engines and hosts gone)" swarm_down
    rm -f "$work/image.tar"
fi
step "manifests and units (kubernetes-validate, systemd-analyze verify)" manifests
if [[ -n $boot_root_pid ]]; then
    wait "$boot_root_pid" || true
    boot_root_pid=
fi
if command -v systemd-nspawn >/dev/null 2>&1; then
    step "systemd units booted in systemd-nspawn (start, restart after SIGKILL, clean stop)" boot
else
    echo "deploy-test: systemd boot: skipped: no systemd-nspawn (Debian systemd-container," \
        "pinned to the installed systemd's version; .ci/run installs it)"
fi
echo "deploy-test: whole run $((SECONDS / 60)) min $((SECONDS % 60)) s"
echo "deploy-test: $passed passed, $failed failed"
((failed == 0))
