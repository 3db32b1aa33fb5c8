# The Gatehouse gateway with the web console. Built by deploy/docker/images.sh, which
# stages rootfs/ (the binary with its libraries, console/dist, the role table and a
# default configuration) and imports the base image (nothing is pulled).
ARG BASE=gatehouse/base:latest
FROM ${BASE}
COPY rootfs/ /
COPY --chown=10001:10001 empty/ /var/lib/gatehouse/
USER 10001:10001
WORKDIR /var/lib/gatehouse
EXPOSE 8080
HEALTHCHECK --interval=2s --timeout=2s --retries=30 \
  CMD wget -q -O /dev/null "http://${GATEHOUSE_LISTEN:-127.0.0.1:8080}/livez" || exit 1
ENTRYPOINT ["/usr/local/bin/gatehouse"]
CMD ["--config", "/etc/gatehouse/gatehouse.toml"]
