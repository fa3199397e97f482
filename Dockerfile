# zenrec serve: one model bundle behind the FastAPI service.
#
#   docker build -t zenrec-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/ml1m-ease/bundle:/bundle:ro" zenrec-serve
#
# The bundle is not baked into the image: mount it read-only at /bundle, or fetch it by content
# hash in an init container (see docs/deployment.md). Deploy the image by its digest
# (`docker buildx build --push ... --metadata-file m.json`, then
# `kustomize edit set image zenrec-serve=REGISTRY/zenrec-serve@sha256:...` in deploy/k8s).
#
# Reproducible: the base image is pinned by digest (refresh it deliberately:
# `docker buildx imagetools inspect python:3.11-slim-bookworm`), and every dependency is
# installed under the constraints of requirements.lock (the versions the test suite ran with).
#
# Variants (build args):
#   CPU image (default): EXTRAS=serve for classic bundles (EASE, ItemKNN, iALS, ...);
#     EXTRAS=serve,neural adds torch from TORCH_INDEX_URL, the PyTorch CPU wheel index
#     (https://download.pytorch.org/whl/cpu, about 200 MB instead of the CUDA build's
#     gigabytes). Where that index is not reachable, point TORCH_INDEX_URL at a mirror of it.
#   GPU image: EXTRAS=serve,neural TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
#     (the CUDA build; its CUDA libraries come as pip wheels, so the same slim base runs on a
#     node with the NVIDIA container runtime); request nvidia.com/gpu: 1 in the Deployment.

FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91 AS build
ARG EXTRAS=serve
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY requirements.lock pyproject.toml README.md ./
COPY src ./src
# torch first, from TORCH_INDEX_URL, when the extras need it; then zenrec and the rest under
# the lock's constraints (torch==2.13.0 there matches the +cpu and CUDA builds alike).
RUN python -m venv /opt/venv \
 && case ",${EXTRAS}," in \
      *,neural,*|*,all,*) /opt/venv/bin/pip install -c requirements.lock \
        --index-url "${TORCH_INDEX_URL}" torch ;; \
    esac \
 && /opt/venv/bin/pip install -c requirements.lock ".[${EXTRAS}]"

FROM python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ZENREC_THREADS=1
RUN groupadd --system --gid 10001 zenrec \
 && useradd --system --uid 10001 --gid zenrec --no-create-home --shell /usr/sbin/nologin zenrec
COPY --from=build /opt/venv /opt/venv
# Numeric user so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
WORKDIR /tmp
VOLUME ["/bundle"]
EXPOSE 8000
# /healthz: the process is alive (readiness is /readyz, probed by the orchestrator).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["zenrec", "serve", "/bundle"]
CMD ["--host", "0.0.0.0", "--port", "8000"]
