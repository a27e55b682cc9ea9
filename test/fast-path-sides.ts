/**
 * The two servers the fast-path equivalence tests compare: the same CacheService over the same
 * cache, registered as the service registers it, one with the fast path and one without.
 */
import http from "node:http";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import type { ReadThroughCache } from "../src/cache/index.ts";
import { ChangeBus } from "../src/events/index.ts";
import { createServer, Metrics, type Server } from "../src/server/index.ts";
import { CACHE_SERVICE_OPTIONS, createCacheService } from "../src/service/cache-service.ts";
import type { SchemaRegistry } from "../src/service/schema-registry.ts";

export interface Side {
  server: Server;
  port: number;
  metrics: Metrics;
  /** Calls that reached the normal handler of the counted method. */
  handlerCalls: number;
}

export interface SideOptions {
  fastPath: boolean;
  cache: ReadThroughCache;
  schema: SchemaRegistry;
  /** What the service's `siteUnreachable` answers (read on every call). */
  unreachable: () => string | undefined;
  /** The unary method whose normal-handler calls are counted. */
  count: "getEntity" | "query";
}

export async function startSide(o: SideOptions): Promise<Side> {
  const metrics = new Metrics({ processMetrics: false });
  const s: Side = { server: undefined as unknown as Server, port: 0, metrics, handlerCalls: 0 };
  s.server = createServer({
    version: "test",
    mode: "site",
    metrics,
    fastPath: o.fastPath,
    readiness: () => ({ ready: true, reasons: [] }),
    routes: (router) => {
      const impl = createCacheService({
        cache: o.cache,
        schema: o.schema,
        feed: new ChangeBus({ replayEvents: 10 }),
        limits: { maxFields: 20, maxPageSize: 500, maxConditions: 50 },
        heartbeatS: 30,
        siteUnreachable: o.unreachable,
      });
      if (o.count === "getEntity") {
        const normal = impl.getEntity.bind(impl);
        impl.getEntity = (req, ctx) => {
          s.handlerCalls++;
          return normal(req, ctx);
        };
      } else {
        const normal = impl.query.bind(impl);
        impl.query = (req, ctx) => {
          s.handlerCalls++;
          return normal(req, ctx);
        };
      }
      router.service(CacheService, impl, CACHE_SERVICE_OPTIONS);
    },
  });
  s.port = (await s.server.listen(0, "127.0.0.1")).port;
  return s;
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
