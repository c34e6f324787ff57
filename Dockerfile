# syntax=docker/dockerfile:1
# Build stage: compile TypeScript (the client package, then the service) and keep only
# production dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY packages ./packages
COPY src ./src
COPY web ./web
RUN npm ci
RUN npm run build
RUN npm prune --omit=dev

# Runtime stage: the compiled service, its production dependencies, a non-root user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SENSORY_HOST=0.0.0.0 \
    SENSORY_PORT=8002 \
    SENSORY_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
# node_modules/@sensory/client links to the workspace package.
COPY --from=build /app/packages ./packages
COPY --from=build /app/dist ./dist
COPY --from=build /app/web ./web
RUN groupadd --system sensory && useradd --system --gid sensory --home /app sensory \
    && mkdir -p /data && chown sensory:sensory /data
USER sensory
VOLUME ["/data"]
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SENSORY_PORT || 8002) + '/health/live').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
