# shotgrid-cache as a container: small (node:20-slim, production dependencies only), runs as the
# unprivileged "node" user, healthy only when /readyz says ready. docs/deploy.md shows how to run it.
#
#   docker build -t shotgrid-cache . && docker run --rm -p 8080:8080 shotgrid-cache   # demo mode

FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" builds the library's dist/ with TypeScript (a dev dependency); the
# command itself runs its sources through tsx, so the image needs neither.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 STATE_DIR=/var/lib/shotgrid-cache
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
COPY gen ./gen
COPY proto ./proto
RUN mkdir -p /var/lib/shotgrid-cache && chown node:node /var/lib/shotgrid-cache
USER node
VOLUME /var/lib/shotgrid-cache
EXPOSE 8080
# No curl in the slim image: Node's own fetch asks /readyz (503 while preloading or draining).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# Node is PID 1 and handles SIGTERM itself: streams end, calls in flight finish (docker stop).
ENTRYPOINT ["node", "bin/shotgrid-cache.mjs", "serve"]
