#!/usr/bin/env bash
# Build the image's base from Debian packages, with no registry: bookworm minbase with python3 and
# python3-venv, docs, man pages, locales and apt's lists trimmed, then `docker import`ed.
#   deploy/base-image.sh [TAG]         (default dtm-base:bookworm; needs root, mmdebstrap, docker)
# Set BASE_TAR=FILE to keep the root file system tarball there (it is rebuilt if missing).
set -euo pipefail
tag=${1:-dtm-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tar=${BASE_TAR:-$tmp/base.tar}
if [[ ! -s $tar ]]; then
    # mmdebstrap picks the output format from the name's extension: build base.tar, then move it
    mkdir -p "$tmp/out"
    mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
        bookworm "$tmp/out/base.tar" \
        "deb $mirror bookworm main" \
        "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main"
    mv "$tmp/out/base.tar" "$tar"
fi
docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' "$tar" "$tag" >/dev/null
echo "base image $tag from Debian bookworm ($(du -h "$tar" | cut -f1) root file system)"
