/**
 * The floor: a bare node:http server answering every request with one fixed JSON body (the same
 * size as a GetEntity answer), in its own process. Nothing the service does can be faster on
 * this runtime and machine, so its throughput is the yardstick for the hit path.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { serveParent } from "./lib/ipc.ts";

let server: http.Server | undefined;

serveParent({
  async start(arg: { body: string }) {
    const body = Buffer.from(arg.body);
    const headers = { "content-type": "application/json", "content-length": String(body.length) };
    server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
      // Read (and drop) the request body like a real handler must before answering.
      req.on("data", () => undefined);
      req.on("end", () => {
        res.writeHead(200, headers);
        res.end(body);
      });
    });
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  },
  async close() {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  },
});
