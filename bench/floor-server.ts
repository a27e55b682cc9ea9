/**
 * The floor: a bare node:http server answering every request with one fixed JSON body (the same
 * size as a GetEntity answer), in its own process. Nothing the service does can be faster on
 * this runtime and machine, so its throughput is the yardstick for the hit path. Beside it, a
 * bare node:http2 server (raw stream API) answering gRPC-shaped bytes (headers, one message,
 * trailers): the most HTTP/2 can do here with a given load generator.
 */
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { serveParent } from "./lib/ipc.ts";

let server: http.Server | undefined;
let server2: http2.Http2Server | undefined;

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
    // The same bytes as one gRPC message: flags, length, body.
    const message = Buffer.alloc(5 + body.length);
    message.writeUInt32BE(body.length, 1);
    body.copy(message, 5);
    server2 = http2.createServer();
    server2.on("stream", (stream) => {
      stream.on("data", () => undefined);
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc+proto" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end(message);
      });
    });
    await new Promise<void>((resolve) => server2!.listen(0, "127.0.0.1", resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      h2Url: `http://127.0.0.1:${(server2.address() as AddressInfo).port}`,
    };
  },
  async close() {
    await new Promise<void>((resolve) => (server2 ? server2.close(() => resolve()) : resolve()));
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  },
});
