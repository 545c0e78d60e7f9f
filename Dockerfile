# sentsim: CPU image serving the REST API with the bundled default model.
# Build: docker build -t sentsim .    Run: docker compose up -d

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /build
# requirements-milvus.lock adds the Milvus client (the compose file's milvus profile).
ARG REQUIREMENTS=requirements.lock
COPY requirements.lock requirements-milvus.lock ./
# torch first, from PyTorch's CPU wheel index (2.13.0+cpu: no CUDA download); the lock's
# torch==2.13.0 is then already satisfied. Then the optional InfoMap extra (GPL-3.0-or-later),
# pinned as in requirements-dev.lock.
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -r "${REQUIREMENTS}" \
    && pip install --no-cache-dir infomap==2.16.0
COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir --no-deps .

FROM python:3.11-slim AS runtime
ENV PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    HF_HUB_OFFLINE=1 \
    SENTSIM_GENERATOR=/opt/sentsim/models/simbert-quora \
    SENTSIM_HOST=0.0.0.0 \
    SENTSIM_PORT=8000 \
    SENTSIM_MODELS_DIR=/data/models \
    SENTSIM_INDEXES_DIR=/data/indexes
RUN useradd --create-home --uid 10001 sentsim \
    && mkdir -p /data/models /data/indexes \
    && chown -R 10001:10001 /data
# The default model (all-MiniLM-L6-v2) is inside the venv, in its PyPI package.
COPY --from=builder /opt/venv /opt/venv
# The shipped paraphrase model (fp16 safetensors, SHA256SUMS checked at load).
COPY models/simbert-quora /opt/sentsim/models/simbert-quora
USER 10001:10001
WORKDIR /home/sentsim
EXPOSE 8000
VOLUME ["/data/indexes"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
ENTRYPOINT ["sentsim", "serve"]
