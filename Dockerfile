# Sibyl gateway image: a build stage with every dependency compiles src/ (tsc) and the web app (Vite);
# the runtime stage has production dependencies only, the compiled dist/, the models and web/dist, and
# runs plain node as a non-root user. test/e2e/production-build.test.ts stages this file's runtime
# COPY lines into a directory and runs its CMD there (no Docker needed); see README "Deploying".
ARG NODE_IMAGE=node:20.19-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node's install script would download CUDA files; the CPU build ships in the package.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the builds) needs the sources, copied below; nothing else needs its script.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY tools/build.mjs tools/build.mjs
COPY src src
COPY db db
COPY web web
RUN node tools/build.mjs && node --import tsx src/cli/web-build.ts

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    ONNXRUNTIME_NODE_INSTALL=skip \
    HOST=0.0.0.0 \
    PORT=4000 \
    DATA_DIR=/data
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/web/dist ./web/dist
COPY models ./models
# DATA_DIR holds the embedded database (without DATABASE_URL) and history spill files: the one writable place.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 4000
VOLUME ["/data"]
# Readiness, not liveness: 503 while starting, draining or with a required component down.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||4000)+'/health/ready').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"]
# node itself is PID 1's only child process (no npm, no shell), so `docker stop`'s SIGTERM reaches it.
# Same node options as package.json's start script (the test checks they match).
CMD ["node", "--max-old-space-size=1024", "dist/src/main.js"]
