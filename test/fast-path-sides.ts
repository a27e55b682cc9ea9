/**
 * The two servers the fast-path equivalence tests compare: both built by `createCacheServer`, the
 * function the service itself builds its server with (the configuration `serve` makes with no
 * flags: limits, default deadline; a debug logger), over the same cache, one with the fast path
 * and one without. The normal handler's calls are counted where it reads the cache (the fast
 * path only peeks).
 */
import http from "node:http";
import { Writable } from "node:stream";
import { pino } from "pino";
import type { ReadThroughCache } from "../src/cache/index.ts";
import { createCacheServer } from "../src/cache-server.ts";
import { ChangeBus } from "../src/events/index.ts";
import { Metrics, type Server } from "../src/server/index.ts";
import type { SchemaRegistry } from "../src/service/schema-registry.ts";
import { testConfig } from "./e2e-helpers.ts";

export interface Side {
  server: Server;
  port: number;
  metrics: Metrics;
  /** What the server logged (debug and up), parsed. */
  logs: Array<Record<string, unknown>>;
}

export interface SideOptions {
  fastPath: boolean;
  cache: ReadThroughCache;
  schema: SchemaRegistry;
  /** What the service's `siteUnreachable` answers (read on every call). */
  unreachable: () => string | undefined;
}

export async function startSide(o: SideOptions): Promise<Side> {
  const metrics = new Metrics({ processMetrics: false });
  const logs: Side["logs"] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const server = createCacheServer({
    config: testConfig(),
    mode: "site",
    cache: o.cache,
    schema: o.schema,
    feed: new ChangeBus({ replayEvents: 10 }),
    logger: pino({ level: "debug" }, sink).child({ component: "server" }),
    metrics,
    readiness: () => ({ ready: true, reasons: [] }),
    siteUnreachable: o.unreachable,
    fastPath: o.fastPath,
  });
  const port = (await server.listen(0, "127.0.0.1")).port;
  return { server, port, metrics, logs };
}

/** Counts the calls the normal handlers make to `cache` (GetEntity and Query reads). */
export function countHandlerReads(cache: ReadThroughCache): { readonly count: number; restore(): void } {
  const { getEntity, query } = cache;
  let count = 0;
  cache.getEntity = (...args) => (count++, getEntity.apply(cache, args));
  cache.query = (...args) => (count++, query.apply(cache, args));
  return {
    get count() {
      return count;
    },
    restore() {
      cache.getEntity = getEntity;
      cache.query = query;
    },
  };
}

/** One raw HTTP/1.1 exchange: status, headers as sent (Date left out), body bytes. */
export interface Exchange {
  status: number;
  headers: string[];
  body: Buffer;
}

export function exchange(port: number, method: string, path: string, body?: Buffer | string, headers: Record<string, string> = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const raw: string[] = [];
        for (let i = 0; i < res.rawHeaders.length; i += 2) {
          if (res.rawHeaders[i]!.toLowerCase() !== "date") raw.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
        }
        resolve({ status: res.statusCode ?? 0, headers: raw, body: Buffer.concat(chunks) });
      });
    });
    req.on("error", reject);
    req.end(body);
  });
}
