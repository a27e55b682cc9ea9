/**
 * Two services in this process sharing one private redis-server, both following one simulated
 * site. Events are polled rarely (once a minute), so what instance B shows right after a write on
 * A is A's invalidation through the shared store, not the event.
 */
import { pino } from "pino";
import { startService, type RunningService } from "../src/app/create-app.ts";
import type { ServeConfig } from "../src/config.ts";
import { DEFAULT_SCRIPT_KEY, type SimulatorHandle } from "../src/simulator/index.ts";
import { testConfig } from "./e2e-helpers.ts";
import { deletePrefix, randomPrefix, TestRedisServer } from "./support/redis-server.ts";

export interface RedisPair {
  instances: [RunningService, RunningService];
  /** Closes both services, deletes the pair's keys and stops redis-server. */
  close(): Promise<void>;
}

export async function startRedisPair(site: SimulatorHandle, overrides: Partial<ServeConfig> = {}): Promise<RedisPair> {
  const redis = await TestRedisServer.start();
  const prefix = randomPrefix();
  const instances: RunningService[] = [];
  const close = async () => {
    for (const s of instances) await s.close(1000);
    const admin = redis.client();
    await deletePrefix(admin, prefix);
    admin.disconnect();
    await redis.stop();
  };
  try {
    for (let i = 0; i < 2; i++) {
      const service = await startService(
        testConfig({
          site: { url: site.url, scriptName: site.scriptName, scriptKey: DEFAULT_SCRIPT_KEY },
          redis: { url: redis.url, prefix },
          reconcileIntervalS: 0,
          pollIntervalMs: 60_000,
          ...overrides,
        }),
        pino({ level: "silent" }),
      );
      instances.push(service);
      await service.ready;
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { instances: [instances[0]!, instances[1]!], close };
}
