#!/usr/bin/env bash
# Check the unit files with `systemd-analyze verify`, in a scratch root holding them, the host's
# own units (sysinit.target ...) and an executable /opt/dtm/bin/dtm, so nothing is installed on
# the machine and no systemd needs to run. Any message (an unknown key, a bad value) fails it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/opt/dtm/bin" "$root/etc/systemd/system" "$root/usr/lib/systemd"
for dir in /usr/lib/systemd/system /lib/systemd/system; do
    if [[ -d $dir ]]; then
        cp -a "$dir" "$root/usr/lib/systemd/"
        break
    fi
done
printf '#!/bin/sh\n' >"$root/opt/dtm/bin/dtm"
chmod +x "$root/opt/dtm/bin/dtm"
cp "$here"/*.service "$root/etc/systemd/system/"
units=()
for f in "$here"/*.service; do
    unit=$(basename "$f")
    units+=("${unit/@.service/@store1.service}")
done
out=$(systemd-analyze verify --man=no --root="$root" "${units[@]}" 2>&1) || { echo "$out"; exit 1; }
if [[ -n $out ]]; then
    echo "$out"
    exit 1
fi
echo "systemd units verified: ${units[*]}"
