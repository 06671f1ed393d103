#!/usr/bin/env bash
# The swarm scenario of `make deploy-test` (deploy/test.sh runs each command below as one step):
# three Docker engines, each in a network namespace of its own ("hosts" h1, h2, h3, one address
# each on one bridge, which sits in a namespace of its own too: nothing of the machine's network
# is touched), one swarm (h1 manages), and deploy/swarm/stack.yaml on it: store1, the sync, a
# balancer and a handler on h1; store2, a balancer and a handler on h2; h3 spare.
#   deploy/swarm/test.sh up DIR IMAGE_TAR  hosts, engines, image, swarm, secrets, labels, deploy
#   deploy/swarm/test.sh replication DIR   a write on each side is read from the other's node
#   deploy/swarm/test.sh balancer DIR      a balancer task killed: the handler keeps serving
#   deploy/swarm/test.sh partition DIR     h2 cut off, writes on both sides, healed: converges
#   deploy/swarm/test.sh reschedule DIR    store2 moved to h3 (new address): replicated again
#   deploy/swarm/test.sh down DIR          stack removed, swarm left, engines and hosts gone
#   deploy/swarm/test.sh clean DIR         the same, quietly, from whatever state (exit traps)
#   deploy/swarm/test.sh all IMAGE_TAR     all of them in a scratch folder (by hand; root)
# IMAGE_TAR is `docker save` of $DTM_IMAGE (default dtm:test). Every wait has a deadline; each
# check prints its times. Names: namespaces dtsw<tag>-h1.., subnet 10.241.S.0/24 (a free S).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
image=${DTM_IMAGE:-dtm:test}
todo_bin=${TODO_BIN:-$repo/.venv/bin/todo}
dtm_bin=${DTM_BIN:-$repo/.venv/bin/dtm}
hosts=(h1 h2 h3)
port_of() { case $1 in store*) echo $((7410 + ${1#store})) ;; balancer) echo 7401 ;; sync) echo 7420 ;; handler) echo 7400 ;; esac; }

cmd=${1:?usage: deploy/swarm/test.sh up|replication|balancer|partition|reschedule|down|clean DIR}
if [[ $cmd == all ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/dtm-swarm-test.XXXXXX")
else
    dir=$(realpath -m "${2:?which folder}")
fi

# ---------------------------------------------------------------- helpers

now() { echo "${EPOCHREALTIME/,/.}"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
say() { echo "swarm: $*"; }
pre() { echo "dtsw$(cat "$dir/tag")"; }
ns_of() { echo "$(pre)-$1"; }                                  # ns_of h1: the host's namespace
ip_of() { echo "$(cat "$dir/subnet").1${1#h}"; }               # ip_of h1: its address
dk() { DOCKER_HOST=unix://$dir/$1/engine/docker.sock docker "${@:2}"; } # dk h1 ARGS: its engine
in_host() { nsenter --net="/run/netns/$(ns_of "$1")" "${@:2}"; }

# todo_at h1 ARGS: the machine's todo, inside host h1, talking to the handler published there
todo_at() {
    mkdir -p "$dir/cli-$1"
    in_host "$1" env XDG_CONFIG_HOME="$dir/cli-$1" XDG_STATE_HOME="$dir/cli-$1" \
        XDG_CACHE_HOME="$dir/cli-$1" TODO_URL="http://$(ip_of "$1"):7400" \
        TODO_TOKEN="$(cat "$dir/token")" timeout 20 "$todo_bin" --no-pager "${@:2}"
}

# task SERVICE: "HOST CONTAINER" of the service's running task (the first found)
task() {
    local h id
    for h in "${hosts[@]}"; do
        id=$(dk "$h" ps -q --filter "label=com.docker.swarm.service.name=dtm_$1" 2>/dev/null | head -1)
        [[ -n $id ]] && { echo "$h $id"; return 0; }
    done
    return 1
}

# api SERVICE PATH: GET PATH of the component, from inside its own container, with the cluster
# credential (the swarm secret): the node API as the sync and the balancer see it
api() {
    local where
    where=$(task "$1") || return 1
    # shellcheck disable=SC2086
    dk ${where% *} exec "${where#* }" python3 -c '
import sys, urllib.request as u
secret = open("/run/secrets/dtm_cluster_secret").read().strip()
r = u.Request("http://127.0.0.1:" + sys.argv[1] + sys.argv[2], headers={"Authorization": "Bearer " + secret})
sys.stdout.write(u.urlopen(r, timeout=5).read().decode())' "$(port_of "$1")" "$2" 2>/dev/null
}

holds() { api "$1" "/v1/kv?limit=1000" | grep -q -- "$2"; } # holds store2 TEXT: a row has TEXT
field() { python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)[sys.argv[1]]))' "$1"; }
digest() { api "$1" /v1/digest | field buckets; }
same_digests() {
    local a b
    a=$(digest store1) && b=$(digest store2) && [[ -n $a && $a == "$b" ]]
}
rows() { api "$1" /v1/status | field live_rows; }

# poll SECONDS WHAT CMD...: run CMD until it succeeds; after SECONDS say WHAT failed
poll() {
    local deadline t0 what=$2
    t0=$(now)
    deadline=$(awk -v a="$t0" -v s="$1" 'BEGIN {printf "%d", a + s}')
    while :; do
        "${@:3}" >/dev/null 2>&1 && return 0
        (($(date +%s) < deadline)) || break
        sleep 0.25
    done
    say "FAILED: $what within $1 s"
    return 1
}

# write_at h1 NODE TEXT: add a task through h1's handler, pinned to NODE, retried until one is
# acknowledged (deadline 45 s); $dir/tries-h1 says how many tries it took and why they failed
write_at() {
    local deadline=$(($(date +%s) + 45)) n=0 out=$dir/tries-$1
    : >"$out"
    while (($(date +%s) < deadline)); do
        n=$((n + 1))
        if todo_at "$1" --node "$2" add "$3" >/dev/null 2>"$dir/err-$1"; then
            echo "$n tries$(sort "$out" | uniq -c | awk '{$1 = $1 "x"; print "; " $0}' | tr -d '\n')" >"$out"
            return 0
        fi
        head -1 "$dir/err-$1" | sed -E 's/ \(the load balancer.*//; s/task [a-z0-9]+/a task/' >>"$out"
        sleep 0.25
    done
    say "FAILED: no write through $1's handler to $2 acknowledged in 45 s:"
    cat "$out"
    return 1
}

ip_in_overlay() { # ip_in_overlay HOST CONTAINER: its address on the stack's network
    dk "$1" inspect -f '{{(index .NetworkSettings.Networks "dtm_dtm").IPAddress}}' "$2"
}

diagnose() { # the last lines of every task, when a check failed
    local h id
    for h in "${hosts[@]}"; do
        [[ -S $dir/$h/engine/docker.sock ]] || continue
        for id in $(dk "$h" ps -aq 2>/dev/null); do
            echo "--- $h $(dk "$h" inspect -f '{{.Name}} {{.State.Status}}' "$id")"
            dk "$h" logs --tail 8 "$id" 2>&1 | cut -c1-240
        done
    done
    dk h1 service ps dtm_store2 --no-trunc 2>&1 | head -8
}

# ---------------------------------------------------------------- up

free_subnet() { # a 10.241.S.0/24 that no address or route here or in any namespace uses
    local s taken
    taken=$( { ip -o addr; ip route; for n in $(ip netns list | awk '{print $1}'); do
        ip -n "$n" -o addr 2>/dev/null; done; } | grep -o '10\.241\.[0-9]*\.' | sort -u || true)
    for s in $(seq $((20 + $$ % 200)) 254) $(seq 20 254); do
        grep -qx "10\.241\.$s\." <<<"$taken" || { echo "10.241.$s"; return 0; }
    done
    return 1
}

up() {
    local tar=${1:?the image tar} t0 h sw tokens jobs=()
    mkdir -p "$dir"
    echo $(($$ % 10000)) >"$dir/tag"
    ip netns list | grep -q "^$(pre)-" && { say "namespaces $(pre)-* exist already"; return 1; }
    free_subnet >"$dir/subnet"
    t0=$(now)
    sw=$(ns_of sw)
    ip netns add "$sw"
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    for h in "${hosts[@]}"; do
        ip netns add "$(ns_of "$h")"
        ip -n "$(ns_of "$h")" link set lo up
        ip -n "$sw" link add "$h" type veth peer name eth0 netns "$(ns_of "$h")"
        ip -n "$sw" link set "$h" master br0 up
        ip -n "$(ns_of "$h")" addr add "$(ip_of "$h")/24" dev eth0
        ip -n "$(ns_of "$h")" link set eth0 up
    done
    for h in "${hosts[@]}"; do
        # the host's resolver (deploy/swarm/nxdns.py): "no such name" at once, as a real one says
        mkdir -p "$dir/$h"
        in_host "$h" python3 deploy/swarm/nxdns.py "$(ip_of "$h")" >"$dir/$h/dns.log" 2>&1 &
        echo $! >"$dir/$h/dns.pid"
        DTM_ENGINE_NETNS=$(ns_of "$h") DTM_ENGINE_HOSTNAME=$h DTM_ENGINE_ARGS="--dns $(ip_of "$h")" \
            deploy/engine.sh start "$dir/$h/engine" >/dev/null &
        jobs+=($!)
    done
    wait_all "engines" "${jobs[@]}"
    say "3 hosts on $(cat "$dir/subnet").0/24, an engine in each: $(since "$t0") s"
    jobs=()
    for h in "${hosts[@]}"; do
        dk "$h" load -q -i "$tar" >/dev/null &
        jobs+=($!)
    done
    wait_all "docker load" "${jobs[@]}"
    say "image $image loaded into each engine: $(since "$t0") s"
    dk h1 swarm init --advertise-addr "$(ip_of h1)" --listen-addr "$(ip_of h1):2377" >/dev/null
    tokens=$(dk h1 swarm join-token -q worker)
    for h in h2 h3; do
        dk "$h" swarm join --advertise-addr "$(ip_of "$h")" --listen-addr "$(ip_of "$h"):2377" \
            --token "$tokens" "$(ip_of h1):2377" >/dev/null
    done
    for h in "${hosts[@]}"; do dk "$h" info -f '{{.Swarm.NodeID}}' >"$dir/$h/node-id"; done
    dk h1 node update --label-add dtm.store1=true --label-add dtm.front=true "$(cat "$dir/h1/node-id")" >/dev/null
    dk h1 node update --label-add dtm.store2=true --label-add dtm.front=true "$(cat "$dir/h2/node-id")" >/dev/null
    # the credential, and a users file with the user `local` (the handlers' one users file)
    (umask 077 && python3 -c 'import secrets; print(secrets.token_urlsafe(32), end="")' >"$dir/secret")
    sed "s|^users_file = .*|users_file = \"$dir/users.json\"|" deploy/swarm/cluster.swarm.toml \
        >"$dir/users.toml"
    (umask 077 && "$dtm_bin" user add local --config "$dir/users.toml" 2>/dev/null >"$dir/token")
    dk h1 secret create dtm_cluster_secret "$dir/secret" >/dev/null
    dk h1 secret create dtm_users "$dir/users.json" >/dev/null
    DTM_IMAGE=$image dk h1 stack deploy --resolve-image never -c deploy/swarm/stack.yaml dtm \
        >"$dir/deploy.log" 2>&1 || { cat "$dir/deploy.log"; return 1; }
    say "swarm of 3, secrets, labels, stack deployed: $(since "$t0") s"
    poll 150 "every service's tasks running and healthy" all_running || { diagnose; return 1; }
    poll 30 "todo list through both handlers" both_handlers || { diagnose; return 1; }
    say "7 tasks healthy (store1, sync, balancer, handler on h1; store2, balancer, handler on" \
        "h2), both handlers serving: $(since "$t0") s"
    dk h1 service ls --format '  {{.Name}} {{.Replicas}}'
}

wait_all() { # wait_all WHAT PID...: wait for those background jobs; fail if one did
    local rc=0 j
    for j in "${@:2}"; do wait "$j" || rc=1; done
    ((rc == 0)) || say "FAILED: $1"
    return "$rc"
}

all_running() {
    local want=(dtm_store1 1/1 dtm_store2 1/1 dtm_sync 1/1 dtm_balancer 2/2 dtm_handler 2/2) i
    local have
    have=$(dk h1 service ls --format '{{.Name}} {{.Replicas}}')
    for ((i = 0; i < ${#want[@]}; i += 2)); do
        # (a service with max_replicas_per_node shows "2/2 (max 1 per node)")
        grep -q "^${want[i]} ${want[i + 1]}\( \|$\)" <<<"$have" || return 1
    done
}

both_handlers() { todo_at h1 list && todo_at h2 list; }

# ---------------------------------------------------------------- the checks

replication() {
    local t0 text
    text="written-on-h1-$RANDOM"
    t0=$(now)
    write_at h1 store1 "$text"
    poll 30 "h1's write ($text) on store2" holds store2 "$text" || { diagnose; return 1; }
    say "a task written through h1's handler to store1 is read from store2 on h2: $(since "$t0") s"
    text="written-on-h2-$RANDOM"
    t0=$(now)
    write_at h2 store2 "$text"
    poll 30 "h2's write ($text) on store1" holds store1 "$text" || { diagnose; return 1; }
    say "a task written through h2's handler to store2 is read from store1 on h1: $(since "$t0") s"
}

balancer() {
    local where t0 fails=0 first="" n=0 deadline late=0
    where=$(dk h1 ps -q --filter label=com.docker.swarm.service.name=dtm_balancer | head -1)
    [[ -n $where ]] || { say "no balancer task on h1"; return 1; }
    todo_at h1 list >/dev/null
    t0=$(now)
    dk h1 kill "$where" >/dev/null
    # every request for 10 s after the kill, through h1's handler, whose own balancer it was
    deadline=$(($(date +%s) + 10))
    while (($(date +%s) < deadline)); do
        n=$((n + 1))
        if todo_at h1 list >/dev/null 2>"$dir/balancer.err"; then
            [[ -n $first ]] || first=$(since "$t0")
        else
            fails=$((fails + 1))
            [[ -n $first ]] && { say "a request failed after the first success:"; cat "$dir/balancer.err"; late=1; }
        fi
        sleep 0.2
    done
    [[ -n $first ]] || { say "FAILED: h1's handler answered nothing for 10 s"; cat "$dir/balancer.err"; diagnose; return 1; }
    say "balancer task on h1 killed: h1's handler answered again after $first s" \
        "($fails of $n requests in 10 s failed)"
    if ((late)) || awk -v f="$first" 'BEGIN {exit !(f > 5)}'; then
        say "FAILED: the handler should serve again within 5 s, and then without a failure"
        return 1
    fi
    poll 60 "the killed balancer task replaced (2/2)" all_running || { diagnose; return 1; }
    say "swarm replaced the balancer task: 2/2 after $(since "$t0") s"
}

partition() {
    local t0 th a b store2_before ok=0 p1 h since
    since=$(date +%s)
    store2_before=$(task store2)
    a="partition-h1-side-$RANDOM"
    b="partition-h2-side-$RANDOM"
    t0=$(now)
    ip -n "$(ns_of h2)" link set eth0 down
    # a write on each side at once: h1's handler to store1, h2's handler (and balancer) to store2
    (write_at h1 store1 "$a" && since "$t0" >"$dir/acked-h1") &
    p1=$!
    (write_at h2 store2 "$b" && since "$t0" >"$dir/acked-h2") &
    wait_all "a write on each side of the partition" "$p1" $! || ok=1
    for h in h1 h2; do
        [[ -s $dir/acked-$h ]] && say "h2 cut off (its link down): a write on $h's side" \
            "acknowledged after $(cat "$dir/acked-$h") s ($(cat "$dir/tries-$h"))"
    done
    ((ok == 0)) || { diagnose; return 1; }
    if holds store2 "$a" || holds store1 "$b"; then
        say "FAILED: a write crossed the partition"
        return 1
    fi
    th=$(now)
    ip -n "$(ns_of h2)" link set eth0 up
    say "healed after $(since "$t0") s"
    poll 120 "both writes on both nodes, digests equal" converged "$a" "$b" || { diagnose; return 1; }
    say "store1 and store2 identical (digests equal, $(rows store1) rows each)" \
        "$(since "$th") s after healing"
    sync_log "$since"
    # Swarm may have marked h2 down meanwhile (no heartbeat for about 15 s): on its return it
    # replaces h2's tasks. The next check starts from a settled cluster.
    poll 120 "all 7 tasks healthy again, digests equal" settled || { diagnose; return 1; }
    if [[ $(task store2) != "$store2_before" ]]; then
        say "swarm had marked h2 down and replaced its tasks on its return: all 7 healthy again," \
            "digests equal, $(since "$th") s after healing"
    fi
}

settled() { all_running && same_digests; }
converged() { holds store1 "$2" && holds store2 "$1" && same_digests; }

reschedule() {
    local t0 tr before after ip_before ip_after text since
    since=$(date +%s)
    before=$(task store2)
    ip_before=$(ip_in_overlay $before)
    [[ ${before% *} == h2 ]] || { say "store2 runs on ${before% *}, not h2"; return 1; }
    t0=$(now)
    dk h1 node update --label-rm dtm.store2 "$(cat "$dir/h2/node-id")" >/dev/null
    dk h1 node update --label-add dtm.store2=true "$(cat "$dir/h3/node-id")" >/dev/null
    dk h1 service update --force --detach dtm_store2 >/dev/null 2>&1
    poll 60 "store2's task healthy on h3" on_h3 || { diagnose; return 1; }
    after=$(task store2)
    ip_after=$(ip_in_overlay $after)
    tr=$(now)
    say "store2 moved from h2 ($ip_before) to h3 ($ip_after), empty there: healthy" \
        "$(since "$t0") s after the update"
    [[ $ip_after != "$ip_before" ]] || { say "FAILED: the same address"; return 1; }
    poll 60 "store2 at its new address as full as store1" same_digests || { diagnose; return 1; }
    say "the sync found store2 at its new address and copied every row ($(rows store2)):" \
        "digests equal $(since "$tr") s after it was healthy, $(since "$t0") s after the update"
    text="after-the-move-$RANDOM"
    t0=$(now)
    write_at h2 store2 "$text" # the balancer finds store2 there too
    poll 30 "the write to store2 on h3 on store1" holds store1 "$text" || { diagnose; return 1; }
    say "a write through h2's handler and a balancer to store2 on h3 is on store1: $(since "$t0") s"
    sync_log "$since" # when the sync lost store2 and found it again
}

sync_log() { # sync_log UNIX_TIME: the sync's lines about store2 since then (time, message)
    local where
    where=$(task sync) || return 0
    # shellcheck disable=SC2086
    dk ${where% *} logs --since "$1" "${where#* }" 2>&1 | grep 'store2' |
        grep -v 'anti-entropy' | sed -E 's/^[0-9-]+ ([0-9:,]+) [A-Z]+ sync [a-z.]+: /    sync \1 /' |
        cut -c1-160
}

on_h3() { # store2's task on h3 is healthy (and so its name resolves: swarm adds it only then)
    local t
    t=$(task store2) && [[ ${t% *} == h3 ]] &&
        [[ $(dk h3 inspect -f '{{.State.Health.Status}}' "${t#* }") == healthy ]]
}

# ---------------------------------------------------------------- down and clean

down() {
    local t0 h names=()
    t0=$(now)
    for h in "${hosts[@]}" sw; do names+=("$(ns_of "$h")"); done
    dk h1 stack rm dtm >/dev/null
    # the tasks' clean stop is the compose scenario's check; here they are simply killed
    for h in "${hosts[@]}"; do
        dk "$h" ps -aq | xargs -r env DOCKER_HOST=unix://$dir/$h/engine/docker.sock docker rm -f \
            >/dev/null 2>&1 &
    done
    wait
    poll 30 "every task gone" no_containers || return 1
    for h in h3 h2; do dk "$h" swarm leave >/dev/null 2>&1 || true; done
    dk h1 swarm leave --force >/dev/null
    clean
    for h in "${names[@]}"; do
        [[ -e /run/netns/$h ]] && { say "FAILED: namespace $h left"; return 1; }
    done
    say "stack removed, swarm left, engines stopped, hosts gone: $(since "$t0") s"
}

no_containers() {
    local h
    for h in "${hosts[@]}"; do [[ -z $(dk "$h" ps -aq) ]] || return 1; done
}

clean() { # whatever exists of it: engines (in parallel), stray processes, namespaces, files
    set +e
    [[ -f $dir/tag ]] || { rm -rf "$dir"; return 0; }
    local h ns pids
    for h in "${hosts[@]}"; do
        [[ -d $dir/$h/engine ]] && deploy/engine.sh stop "$dir/$h/engine" &
    done
    wait
    for h in "${hosts[@]}"; do
        [[ -f $dir/$h/dns.pid ]] && kill "$(cat "$dir/$h/dns.pid")" 2>/dev/null
    done
    for h in "${hosts[@]}" sw; do
        ns=$(ns_of "$h")
        [[ -e /run/netns/$ns ]] || continue
        pids=$(ip netns pids "$ns" 2>/dev/null) # only what this test started runs in its hosts
        [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns"
    done
    rm -rf "$dir"
    return 0
}

case $cmd in
up) up "${3:?the image tar (docker save of $image)}" ;;
replication | balancer | partition | reschedule | down) "$cmd" ;;
clean) clean ;;
all)
    trap clean EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    tar=${2:?the image tar}
    for step in up replication balancer partition reschedule down; do
        t=$SECONDS
        "$repo/deploy/swarm/test.sh" "$step" "$dir" "$tar" || { say "$step: FAILED after $((SECONDS - t)) s"; exit 1; }
        say "$step: passed in $((SECONDS - t)) s"
    done
    ;;
*) echo "usage: deploy/swarm/test.sh up|replication|balancer|partition|reschedule|down|clean DIR" >&2; exit 2 ;;
esac
