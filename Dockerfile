# syntax=docker/dockerfile:1
# tenantd container image (docs/operations-metrics.md, "Container").
#
# Stage "build" compiles with the Debian packages of `make deps` that the build needs and
# runs the unit tests; stage "runtime" carries only the shared libraries those -dev
# packages stand for, PostgreSQL 15 (the embedded cluster, used when TENANTD_DATABASE_URL
# is unset) and curl for the HEALTHCHECK. tests/integration/test_container.c checks these
# package lists against the Makefile's DEPS.

FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      libmicrohttpd-dev libpq-dev libjansson-dev libjwt-dev libsodium-dev \
      libcmocka-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY src ./src
COPY tests ./tests
COPY migrations ./migrations
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build build -j "$(nproc)" \
 && (cd build && ctest --output-on-failure -L unit)

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libpq5 libjansson4 libjwt0 libsodium23 \
      postgresql-15 postgresql-contrib \
      curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/tenantd --create-home \
      --shell /usr/sbin/nologin tenantd
COPY --from=build /src/build/tenantd /usr/local/bin/tenantd
COPY --from=build /src/migrations /usr/share/tenantd/migrations
ENV TENANTD_DATA_DIR=/var/lib/tenantd \
    TENANTD_LISTEN=0.0.0.0:8080 \
    TENANTD_MIGRATIONS_DIR=/usr/share/tenantd/migrations
USER tenantd
WORKDIR /var/lib/tenantd
VOLUME ["/var/lib/tenantd"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/tenantd"]
CMD ["serve"]
