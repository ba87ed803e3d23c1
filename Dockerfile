# syntax=docker/dockerfile:1
# The four paktum-<service> images, one build argument apart. Build from the repository root:
#   docker build --build-arg SERVICE=hasher -t ghcr.io/paktum/paktum-hasher .
# SERVICE is api, hasher, cleanup or scraper (`make images` builds all four).
# The workspace lock file decides every Python version; the build stage holds uv, the final stage only the venv.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
# Bytecode is compiled here because the final root filesystem is read-only; copy mode because /root/.cache is a cache mount.
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/paktum
WORKDIR /src
# Declared after the uv install so the four images share that layer; a wrong or missing SERVICE stops here,
# with the reason, rather than as an obscure uv error.
ARG SERVICE
RUN case "${SERVICE}" in api|hasher|cleanup|scraper) ;; \
      *) echo "SERVICE must be api, hasher, cleanup or scraper (--build-arg SERVICE=...), not '${SERVICE}'" >&2; exit 1 ;; \
    esac
# Dependencies first, from the manifests alone, so a source change does not reinstall them.
# Every member's manifest is copied because uv resolves the whole workspace against the lock; only one is installed.
COPY pyproject.toml uv.lock README.md ./
COPY libs/paktum-common/pyproject.toml libs/paktum-common/
COPY services/api/pyproject.toml services/api/
COPY services/hasher/pyproject.toml services/hasher/
COPY services/cleanup/pyproject.toml services/cleanup/
COPY services/scraper/pyproject.toml services/scraper/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "paktum-${SERVICE}" --no-install-workspace
# Sources: the common library and this service only.
COPY libs/paktum-common/src libs/paktum-common/src
COPY services/${SERVICE}/src services/${SERVICE}/src
# paktum-service is the one name CMD can use for every image: exec form needs a literal command (CMD does not expand
# build arguments), and a symlink beside the real script keeps a shell out of the way between tini and the service.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --package "paktum-${SERVICE}" --no-editable \
    && ln -s "paktum-${SERVICE}" /opt/paktum/bin/paktum-service

FROM ${PYTHON_IMAGE}
ARG SERVICE
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="paktum-${SERVICE}" \
      org.opencontainers.image.description="Paktum ${SERVICE}: one service of the Paktum self-hosted image server." \
      org.opencontainers.image.source="https://github.com/paktum/paktum" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# tini is PID 1 so SIGTERM reaches the app and zombies are reaped.
# ffmpeg decodes the first frame of video posts (webm, mp4): the hasher's alone.
# Debian's security updates move these versions, so they are not pinned; the lock file pins the Python side.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && if [ "${SERVICE}" = hasher ]; then apt-get install -y --no-install-recommends ffmpeg; fi \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 paktum \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin paktum
COPY --from=build /opt/paktum /opt/paktum
# The root filesystem can be read-only: data goes to /data (a volume), scratch to /tmp (an emptyDir).
# PAKTUM_API_HOST is the api's bind address; the other services share its settings object but never bind.
ENV PATH=/opt/paktum/bin:$PATH \
    HOME=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAKTUM_DATA_DIR=/data \
    PAKTUM_LOG_FORMAT=json \
    PAKTUM_API_HOST=0.0.0.0
WORKDIR /data
USER 10001:10001
# The api's port; the other services do not listen on it (EXPOSE only documents).
EXPOSE 8080
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["paktum-service"]
