# dtm: one image for every component: `dtm node|balancer|handler|sync|health ...` and `todo`.
#
# BASE must be an image the engine has or can pull:
#   where no registry is reachable, build it from Debian packages: deploy/base-image.sh
#   elsewhere:                        docker build --build-arg BASE=python:3.11-slim-bookworm .
# With a wheelhouse in ./wheels (`pip wheel -w wheels .`, see `make image`) the build needs no
# network; without one, pip installs from PyPI, trusting ./build-ca.crt if present (build stage
# only: it never reaches the final image).
#
# At run time: the cluster TOML at $DTM_CONFIG (mount it read-only), the data in the volume at
# /var/lib/dtm/data, the credential from the file the TOML's secret_file names (a Docker or
# Kubernetes secret, mode 0400/0600, owned by uid 10001) or from $DTM_CLUSTER_SECRET, and the
# TLS files from the TOML's [tls] paths. $DTM_COMPONENT names the component HEALTHCHECK probes.
ARG BASE=dtm-base:bookworm

FROM ${BASE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
COPY pyproject.toml README.md build-ca.cr[t] /src/
COPY src /src/src
# The glob lets the COPY succeed when there is no wheelhouse (pyproject.toml is only a filler).
COPY pyproject.toml wheel[s] /src/wheelhouse/
RUN set -e; \
    if [ -f /src/build-ca.crt ]; then export PIP_CERT=/src/build-ca.crt; fi; \
    python3 -m venv /opt/dtm; \
    if ls /src/wheelhouse/*.whl >/dev/null 2>&1; then \
        /opt/dtm/bin/pip install --no-index --find-links /src/wheelhouse dtm; \
    else \
        /opt/dtm/bin/pip install /src; \
    fi; \
    /opt/dtm/bin/dtm --help >/dev/null

FROM ${BASE}
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PATH=/opt/dtm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DTM_CONFIG=/etc/dtm/cluster.toml
COPY --from=build /opt/dtm /opt/dtm
# A fresh named volume copies the ownership of /var/lib/dtm/data: the user can write its data.
RUN groupadd --system --gid 10001 dtm \
 && useradd --system --uid 10001 --gid dtm --home-dir /var/lib/dtm --create-home \
        --shell /usr/sbin/nologin dtm \
 && install -d -m 0700 -o dtm -g dtm /var/lib/dtm/data /var/lib/dtm/logs \
 && install -d -m 0755 /etc/dtm
USER 10001:10001
WORKDIR /var/lib/dtm
VOLUME ["/var/lib/dtm/data"]
# Every component stops on SIGTERM: it finishes pending requests and exits within 10 s.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=4s --start-period=20s --retries=3 CMD ["dtm", "health"]
ENTRYPOINT ["dtm"]
CMD ["--help"]
