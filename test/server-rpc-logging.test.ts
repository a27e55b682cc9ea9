/**
 * RPC logs: one structured line per finished call, at a level that matches who is at fault, and
 * never the request's contents.
 */
import { Writable } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { pino } from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { CacheService } from "../gen/shotgrid/cache/v1/cache_pb.ts";
import { Metrics, type Server } from "../src/server/index.ts";
import { SHOT_ID, startTestServer } from "./server-test-service.ts";

const lines: Record<string, unknown>[] = [];
let server: Server;
let url: string;

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  ({ server, url } = await startTestServer({ logger: pino({ level: "debug" }, sink), metrics: new Metrics({ processMetrics: false }) }));
});
afterAll(() => server.close(1000));

it("logs each call with method, code and duration, caller errors at info, and no request contents", async () => {
  const client = createClient(CacheService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  await client.getEntity({ entityType: "Shot", id: SHOT_ID, fields: ["secret_field_xyz"] });
  await client.getEntity({ entityType: "Shot", id: 77, fields: ["secret_field_xyz"] }).catch(() => undefined);
  await expect.poll(() => lines.filter((l) => l.msg === "rpc" || l.msg === "rpc failed").length).toBe(2);

  const ok = lines.find((l) => l.msg === "rpc")!;
  expect(ok).toMatchObject({ level: 20, rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "ok" });
  expect(typeof ok.ms).toBe("number");
  const failed = lines.find((l) => l.msg === "rpc failed")!;
  expect(failed).toMatchObject({ level: 30, rpc: "shotgrid.cache.v1.CacheService/GetEntity", code: "not_found", err: "Shot 77 not found" });
  expect(JSON.stringify(lines)).not.toContain("secret_field_xyz");
});
