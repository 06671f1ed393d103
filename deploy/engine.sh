#!/usr/bin/env bash
# A Docker engine of its own, inside a network namespace of its own, for tests:
#   eval "$(deploy/engine.sh start DIR)"    start one; prints DOCKER_HOST=... and DTM_ENGINE_NS=...
#   deploy/engine.sh stop DIR               stop it, unmount and delete its namespace and DIR
# With DTM_ENGINE_NETNS=NAME the engine runs in that existing namespace (a "host" of a multi-host
# test), which `stop` leaves to its owner; DTM_ENGINE_HOSTNAME=NAME gives it a UTS namespace of its
# own with that host name (a swarm node's name); DTM_ENGINE_ARGS adds options to dockerd's.
# Its bridges, NAT rules and FORWARD policy stay inside the namespace and vanish with it; the
# machine's own firewall is never touched. `nsenter --net=`, not `ip netns exec`: the latter
# remounts /sys, and dockerd then dies with "Devices cgroup isn't mounted". The namespace has no
# uplink: builds use the wheelhouse. Reach a published port with `nsenter --net=/run/netns/NS`.
set -euo pipefail
cmd=${1:?usage: engine.sh start|stop DIR}
dir=$(realpath -m "${2:?usage: engine.sh start|stop DIR}")
dockerd=$(command -v dockerd || echo /usr/sbin/dockerd)

case $cmd in
start)
    mkdir -p "$dir"
    ns=${DTM_ENGINE_NETNS:-}
    if [[ -z $ns ]]; then
        ns=dtmeng$$
        ip netns add "$ns"
        echo "$ns" >"$dir/netns" # ours: `stop` deletes it
        ip -n "$ns" link set lo up
    fi
    uts=()
    [[ -n ${DTM_ENGINE_HOSTNAME:-} ]] && uts=(unshare --uts sh -c 'hostname "$0" && exec "$@"' "$DTM_ENGINE_HOSTNAME")
    # shellcheck disable=SC2086
    nsenter --net="/run/netns/$ns" "${uts[@]}" "$dockerd" --data-root "$dir/data" \
        --exec-root "$dir/exec" -H "unix://$dir/docker.sock" --pidfile "$dir/docker.pid" \
        ${DTM_ENGINE_ARGS:-} >"$dir/dockerd.log" 2>&1 &
    echo $! >"$dir/dockerd.pid"
    for _ in $(seq 1 120); do
        DOCKER_HOST=unix://$dir/docker.sock docker info >/dev/null 2>&1 && break
        kill -0 "$(cat "$dir/dockerd.pid")" 2>/dev/null || { tail -5 "$dir/dockerd.log" >&2; exit 1; }
        sleep 0.25
    done
    DOCKER_HOST=unix://$dir/docker.sock docker info >/dev/null
    echo "export DOCKER_HOST=unix://$dir/docker.sock DTM_ENGINE_NS=$ns"
    ;;
stop)
    set +e
    if [[ -f $dir/dockerd.pid ]]; then
        pid=$(cat "$dir/dockerd.pid")
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 1 80); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$pid" 2>/dev/null
    fi
    # containerd-shims of killed containers, if any, still hold the exec root's mounts
    grep -o " $dir/[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
    [[ -f $dir/netns ]] && ip netns del "$(cat "$dir/netns")" 2>/dev/null
    rm -rf "$dir"
    ;;
*)
    echo "usage: engine.sh start|stop DIR" >&2
    exit 2
    ;;
esac
