/** The composition root: one running service (cache, follower, cluster, server) from a configuration. */
export { startService, type RunningService } from "./create-app.ts";
export { createCacheServer, type CacheServerOptions } from "./cache-server.ts";
