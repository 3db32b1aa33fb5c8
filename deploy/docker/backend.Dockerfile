# gatehouse-backend, the OpenSandbox lifecycle server. Built by deploy/docker/images.sh.
# It drives the Docker engine whose socket is mounted at /var/run/docker.sock, so it runs
# as root (the socket is root's); give it nothing else.
ARG BASE=gatehouse/base:latest
FROM ${BASE}
COPY rootfs/ /
COPY empty/ /var/lib/gatehouse/
WORKDIR /var/lib/gatehouse
EXPOSE 8090
HEALTHCHECK --interval=2s --timeout=2s --retries=30 \
  CMD wget -q -O /dev/null "http://127.0.0.1:${GATEHOUSE_BACKEND__SERVER__PORT:-8090}/health" || exit 1
ENTRYPOINT ["/usr/local/bin/gatehouse-backend"]
CMD ["--config", "/etc/gatehouse/backend.toml"]
