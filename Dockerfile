# Toka host image: builds the host and the bundled plugins from source, then
# runs `toka-host serve` as an unprivileged user.
#
#   docker build -t toka-host:0.1.0 .
#   toka-host token keygen --keys ./keys          # on the operator's machine
#   docker run -p 8080:8080 -v "$PWD/keys:/etc/toka/keys:ro" toka-host:0.1.0
#
# The server listens on all interfaces, so it requires tokens: the public
# keys are mounted at /etc/toka/keys (only the *.public files are needed),
# and clients send `Authorization: Bearer $(toka-host token issue ...)`.
#
# Wasm tools run fully sandboxed as any user. Shell/Python tools need what
# the subprocess shim needs (Landlock, a pids cgroup, a network namespace:
# root or CAP_SYS_ADMIN); without it they are refused, never run weaker.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Python (componentize-py) and JavaScript (jco) plugins need python3-venv
# and npm; the C plugins' packages are installed by the build script itself.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv nodejs npm \
 && scripts/build-plugins.sh \
 && cargo build --release --locked -p toka-host

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash python3 curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/toka toka
COPY --from=build /src/target/release/toka-host /usr/local/bin/toka-host
COPY --from=build /src/manifests /opt/toka/manifests
COPY --from=build /src/plugins/build /opt/toka/plugins/build
COPY --from=build /src/scripts/tools /opt/toka/scripts/tools
USER toka
ENV TOKA_MANIFESTS=/opt/toka/manifests \
    XDG_CACHE_HOME=/var/lib/toka/cache
# Compile every tool into the toka user's cache now, so the container's
# start and its first Python or JavaScript call do not wait seconds for it.
RUN toka-host tools compile
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["toka-host"]
CMD ["serve", "--addr", "0.0.0.0:8080", "--auth-keys", "/etc/toka/keys", "--audit-log", "/var/lib/toka/audit.jsonl"]
