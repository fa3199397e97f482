# zenrec serve: one model bundle behind the FastAPI service.
#
#   docker build -t zenrec-serve:0.1.0 .
#   docker run --rm -p 8000:8000 -v "$PWD/runs/ml1m-ease/bundle:/bundle:ro" zenrec-serve:0.1.0
#
# The bundle is not baked into the image: mount it read-only at /bundle (see docs/deployment.md).
# Neural bundles (bprmf, twotower, ...) need torch: build with --build-arg EXTRAS=serve,neural.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG EXTRAS=serve
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install ".[${EXTRAS}]"

FROM python:${PYTHON_VERSION}-slim
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
