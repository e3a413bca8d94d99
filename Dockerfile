# One image for the API, the workers and the demo webhook receiver (compose picks the command).
FROM node:24.22.3-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY services ./services
COPY observability ./observability
COPY loadtest ./loadtest
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM node:24.22.3-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The threshold source also sets the workers' memory limits.
COPY --from=build /app/observability/thresholds.yaml ./observability/thresholds.yaml
USER node
EXPOSE 3000 9464 9465 8099
CMD ["node", "--require", "./dist/services/api/tracing.js", "dist/services/api/server.js"]
