#!/usr/bin/env bash
# Boot real systemd in systemd-nspawn, inside a network namespace of its own, with the units of
# deploy/systemd installed as docs/deploy.md says, and check that they work: every component
# active and healthy, a node SIGKILLed is restarted by systemd, a stop is clean (SIGTERM, exit 0).
#   deploy/systemd/boot-test.sh              (root, systemd-nspawn, mmdebstrap; about 1.5 min)
#   deploy/systemd/boot-test.sh --root FILE  only build the root file system tarball FILE
# Set BOOT_ROOT_TAR=FILE to take the root file system tarball from there (built if missing).
# Everything it makes (the container, the namespace, the root) is removed on every exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && python=$repo/.venv/bin/python
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
work=$(mktemp -d "${TMPDIR:-/tmp}/dtm-boot.XXXXXX")
root=$work/root
ns=dtmboot$$
nspawn_pid=
cleanup() {
    set +e
    if [[ -n $nspawn_pid ]] && kill -0 "$nspawn_pid" 2>/dev/null; then
        kill -TERM "$nspawn_pid"
        for _ in $(seq 1 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL "$nspawn_pid" 2>/dev/null
        wait "$nspawn_pid" 2>/dev/null
    fi
    ip netns del "$ns" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

# make_root FILE: bookworm minbase with systemd, dbus and python3, as a tarball
make_root() {
    mkdir -p "$work/out"
    mmdebstrap --quiet --variant=minbase \
        --include=systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$work/out/root.tar" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main"
    mv "$work/out/root.tar" "$1"
}
if [[ ${1:-} == --root ]]; then
    make_root "${2:?--root FILE}"
    exit 0
fi
tar=${BOOT_ROOT_TAR:-$work/root.tar}
[[ -s $tar ]] || make_root "$tar"
mkdir -p "$root"
tar -C "$root" -xf "$tar"

# Install dtm as docs/deploy.md (systemd) says: a venv at /opt/dtm from a wheelhouse, the user,
# the config, the secret (0600, owned by dtm), the units; enable all five components.
"$python" -m pip wheel -q --disable-pip-version-check -w "$root/wheels" . 2>&1 |
    grep -v '^WARNING: Location' >&2 || true
# (env -i: this machine's pip settings are not the container's)
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin chroot "$root" sh -ec 'python3 -m venv /opt/dtm
    /opt/dtm/bin/pip install -q --no-index --find-links /wheels dtm
    useradd --system --home-dir /var/lib/dtm --shell /usr/sbin/nologin dtm
    install -d -m 0755 /etc/dtm'
rm -rf "$root/wheels"
cat >"$root/etc/dtm/cluster.toml" <<'EOF'
[cluster]
data_dir = "/var/lib/dtm/data"
log_dir = "/var/lib/dtm/logs"
secret_file = "/etc/dtm/secret"
[[node]]
name = "store1"
port = 7411
[[node]]
name = "store2"
port = 7412
[balancer]
port = 7401
[handler]
port = 7400
[sync]
port = 7420
EOF
"$python" -c 'import secrets; print(secrets.token_urlsafe(32))' >"$root/etc/dtm/secret"
chmod 0600 "$root/etc/dtm/secret"
chroot "$root" chown dtm:dtm /etc/dtm/secret
units=(dtm-node@store1 dtm-node@store2 dtm-balancer dtm-handler dtm-sync)
cp deploy/systemd/*.service "$root/etc/systemd/system/"
mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
for u in "${units[@]}"; do
    ln -s "/etc/systemd/system/${u/@*/@}.service" \
        "$root/etc/systemd/system/multi-user.target.wants/$u.service"
done

ip netns add "$ns"
ip -n "$ns" link set lo up
systemd-nspawn --boot --register=no --keep-unit --quiet --machine="$ns" --directory="$root" \
    --network-namespace-path="/run/netns/$ns" >"$work/console.log" 2>&1 &
nspawn_pid=$!

leader=
in_box() { nsenter --target="$leader" --all "$@"; }
deadline=$((SECONDS + 60))
until [[ -n $leader ]] && in_box systemctl is-system-running --wait >/dev/null 2>&1; do
    leader=$(pgrep -P "$nspawn_pid" | head -1 || true)
    if ((SECONDS > deadline)) || ! kill -0 "$nspawn_pid" 2>/dev/null; then
        echo "systemd did not boot; the console:"
        tail -30 "$work/console.log"
        [[ -n $leader ]] && in_box systemctl --failed --no-pager
        exit 1
    fi
    sleep 0.5
done

healthy() { # healthy COMPONENT: `dtm health` inside the container, until a deadline
    local deadline=$((SECONDS + 30))
    until in_box /opt/dtm/bin/dtm health "$1" --config /etc/dtm/cluster.toml >/dev/null 2>&1; do
        if ((SECONDS > deadline)); then
            echo "$1 is not healthy:"
            in_box systemctl status --no-pager "${2:-}" | tail -15
            return 1
        fi
        sleep 0.5
    done
}
prop() { in_box systemctl show -P "$2" "$1"; }

for u in "${units[@]}"; do
    [[ $(prop "$u" ActiveState) == active ]] || { in_box systemctl status --no-pager "$u"; exit 1; }
done
for c in store1 store2 balancer handler sync; do healthy "$c"; done
echo "booted: ${units[*]} active and healthy"

in_box systemctl kill --signal=KILL dtm-node@store1
deadline=$((SECONDS + 30))
until [[ $(prop dtm-node@store1 NRestarts) == 1 && $(prop dtm-node@store1 ActiveState) == active ]]; do
    ((SECONDS < deadline)) || { echo "dtm-node@store1 was not restarted after SIGKILL"; exit 1; }
    sleep 0.25
done
healthy store1 dtm-node@store1
echo "restarted: dtm-node@store1 after SIGKILL (NRestarts=1) and healthy"

for u in "${units[@]}"; do
    in_box systemctl stop "$u"
    result=$(prop "$u" Result) status=$(prop "$u" ExecMainStatus)
    [[ $result == success && $status == 0 ]] || {
        echo "$u stopped with result $result, status $status (not a clean SIGTERM stop)"
        exit 1
    }
done
echo "stopped cleanly: ${units[*]} (SIGTERM, exit 0)"
kill -s SIGRTMIN+3 "$leader" # systemd's "halt": a clean shutdown of the container
for _ in $(seq 1 60); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.25; done
