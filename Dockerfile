# The gateway image: the `veil` command (serve, migrate, init, ledger verify) as uid 10001.
# Nothing but the code is in it: keys, the database URL and VEIL_HOME's contents are given at
# run time (deploy/k8s mounts them from Secrets and a volume).
#   docker build -t veil/gateway:0.1.0 .

FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/veil
WORKDIR /src
COPY pyproject.toml ./
COPY clients/python ./clients/python
COPY gateway ./gateway
COPY console ./console
COPY services ./services
COPY governance ./governance
COPY sandbox ./sandbox
COPY ledger ./ledger
COPY policies ./policies
COPY database ./database
# The `veil` command mounts the client's remote commands, so both distributions go in.
RUN /opt/veil/bin/pip install ./clients/python .

FROM python:3.11.14-slim-bookworm
# pyseccomp loads libseccomp to seal job processes (sandbox/jobs/seal.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends libseccomp2 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 veil \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/veil \
        --no-create-home --shell /usr/sbin/nologin veil \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/veil
COPY --from=build /opt/veil /opt/veil
ENV PATH=/opt/veil/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VEIL_HOME=/var/lib/veil
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
ENTRYPOINT ["veil"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
