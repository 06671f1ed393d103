#!/usr/bin/env bash
# Build the dtm image (`make image`): deploy/image.sh [TAG]  (default $DTM_IMAGE or dtm:local)
# The base is $BASE (default dtm-base:bookworm); when the engine lacks it and BASE is the default,
# it is built from Debian packages first (deploy/base-image.sh: root and mmdebstrap). The project
# comes from a wheelhouse made here, so the build itself needs no network. The build context is a
# scratch copy of what the image needs: nothing is written into the checkout.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag=${1:-${DTM_IMAGE:-dtm:local}}
base=${BASE:-dtm-base:bookworm}
python=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && python=.venv/bin/python
if ! docker image inspect "$base" >/dev/null 2>&1; then
    if [[ $base != dtm-base:bookworm ]]; then
        docker pull "$base"
    else
        deploy/base-image.sh "$base"
    fi
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp -r Dockerfile .dockerignore pyproject.toml README.md src "$ctx/"
[[ -f build-ca.crt ]] && cp build-ca.crt "$ctx/"
"$python" -m pip wheel -q --disable-pip-version-check -w "$ctx/wheels" . 2>&1 | grep -v '^WARNING: Location' >&2 || true
ls "$ctx"/wheels/dtm-*.whl >/dev/null
if ! docker build --build-arg BASE="$base" -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
    tail -30 "$ctx/build.log" >&2
    exit 1
fi
echo "image $tag on $base: $(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1/1e6}')"
