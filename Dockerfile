# cinder-csi image: `docker build -t cinder-csi:v0.1.0 .`
#
# One image serves both halves of the driver. Its entrypoint is
# `cinder-csi serve`, so the manifests pass only flags (--mode, --endpoint,
# --config). It runs as uid 65532 by default, which is what the controller
# uses; the node DaemonSet runs it as root and privileged through its
# securityContext, because staging needs mkfs, mount and resize2fs.

# ---- build: compile TypeScript, then drop the dev dependencies -------------
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
# The driver alone (tsconfig.build.json): the tests and benchmarks stay out of the image.
RUN npm run build:driver \
 && npm prune --omit=dev

# ---- runtime: Node LTS plus the tools the node plugin runs -----------------
FROM node:22-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      ca-certificates \
      e2fsprogs \
      xfsprogs \
      util-linux \
      mount \
      fdisk \
      udev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/proto ./proto
# The launcher picks Node's flags for the mode (the node plugin runs V8 jitless).
COPY bin/cinder-csi ./bin/cinder-csi
RUN chmod 0755 /app/bin/cinder-csi \
 && ln -s /app/bin/cinder-csi /usr/local/bin/cinder-csi \
 && groupadd --gid 65532 nonroot \
 && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin nonroot
ENV NODE_ENV=production
USER 65532:65532
ENTRYPOINT ["cinder-csi", "serve"]
