# DEVELOPMENT-ONLY OpenID provider (dev/idp): any password works for its built-in users.
# Never deploy it; it binds 127.0.0.1 only. Built by deploy/docker/images.sh.
ARG BASE=gatehouse/base:latest
FROM ${BASE}
COPY rootfs/ /
USER 10001:10001
WORKDIR /opt/idp
EXPOSE 9000
HEALTHCHECK --interval=2s --timeout=2s --retries=30 \
  CMD wget -q -O /dev/null "http://127.0.0.1:${IDP_PORT:-9000}/.well-known/openid-configuration" || exit 1
ENTRYPOINT ["/usr/bin/node", "/opt/idp/server.mjs"]
