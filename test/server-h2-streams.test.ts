/**
 * The one-port listener's HTTP/2 stream hook (`OnePortListenerOptions.streams`), what the fast
 * path stands on: a stream declined goes to the request handler untouched; one taken and handed
 * on reaches it with its body given back (what was read, then the rest); a hook that throws
 * costs that stream a 500, never the process; a taken stream keeps its session open while it runs.
 */
import http2 from "node:http2";
import { afterEach, describe, expect, it } from "vitest";
import { OnePortListener, type H2StreamHandler, type RequestHandler } from "../src/server/index.ts";

let listener: OnePortListener | undefined;
let session: http2.ClientHttp2Session | undefined;
afterEach(async () => {
  session?.destroy();
  await listener?.close(200);
  listener = session = undefined;
});

/** Echoes the request body as connect-node reads it (by iterating the request). */
const echo: RequestHandler = (req, res) => {
  void (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    res.writeHead(200, { "content-type": "application/octet-stream", "x-path": req.url ?? "" });
    res.end(body);
  })();
};

async function start(streams: H2StreamHandler, keepAliveTimeoutMs?: number): Promise<http2.ClientHttp2Session> {
  listener = new OnePortListener({ handler: echo, streams, keepAliveTimeoutMs });
  const { url } = await listener.listen(0);
  session = http2.connect(url);
  return session;
}

function post(s: http2.ClientHttp2Session, path: string, body: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const stream = s.request({ ":method": "POST", ":path": path });
    const chunks: Buffer[] = [];
    let status = 0;
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("error", reject);
    stream.on("close", () => resolve({ status, body: Buffer.concat(chunks) }));
    stream.end(body);
  });
}

describe("HTTP/2 streams offered before the compat layer", () => {
  it("passes a declined stream on untouched, and answers a taken one itself", async () => {
    const s = await start((stream, headers) => {
      if (headers[":path"] !== "/mine") return false;
      stream.respond({ ":status": 203 });
      stream.end("taken");
      return true;
    });
    const body = Buffer.from("a body for the handler");
    expect(await post(s, "/other", body)).toEqual({ status: 200, body });
    expect(await post(s, "/mine", body)).toEqual({ status: 203, body: Buffer.from("taken") });
  });

  it("hands a stream on with its body given back: all of it, or what was read and then the rest", async () => {
    const big = Buffer.alloc(300_000, 7); // several DATA frames and flow-control windows
    const s = await start((stream, _headers, fallback) => {
      const chunks: Buffer[] = [];
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        if (stream.readableLength === 0 && Buffer.concat(chunks).length >= 1000 && _headers[":path"] === "/part") {
          stream.off("data", onData);
          stream.off("end", onEnd);
          stream.pause();
          fallback(stream, Buffer.concat(chunks), stream);
        }
      };
      const onEnd = () => fallback(stream, Buffer.concat(chunks));
      stream.on("data", onData);
      stream.on("end", onEnd);
      return true;
    });
    const whole = await post(s, "/whole", big);
    expect(whole.status).toBe(200);
    expect(whole.body.equals(big)).toBe(true);
    const part = await post(s, "/part", big);
    expect(part.status).toBe(200);
    expect(part.body.equals(big)).toBe(true);
  });

  it("hands a stream on once, whatever a hook that misreports it does", async () => {
    let calls = 0;
    const counting: RequestHandler = (req, res) => {
      calls++;
      echo(req, res);
    };
    // Hands the stream on at once, yet says it declined it.
    const misreporting: H2StreamHandler = (stream, _headers, fallback) => {
      fallback(stream, Buffer.from("given back"));
      return false;
    };
    listener = new OnePortListener({ handler: counting, streams: misreporting });
    session = http2.connect((await listener.listen(0)).url);
    expect(await post(session, "/any", Buffer.from("ignored"))).toEqual({ status: 200, body: Buffer.from("given back") });
    expect(calls).toBe(1);
  });

  it("answers 500 for a stream whose hook threw, and serves the next one", async () => {
    const faults: unknown[] = [];
    listener = new OnePortListener({
      handler: echo,
      streams: (_stream, headers) => {
        if (headers[":path"] === "/boom") throw new Error("a bug in the hook");
        return false;
      },
      onRequestFault: (err) => faults.push(err),
    });
    const { url } = await listener.listen(0);
    session = http2.connect(url);
    const boom = await post(session, "/boom", Buffer.from("x"));
    expect(boom.status).toBe(500);
    expect(JSON.parse(boom.body.toString("utf8"))).toEqual({ code: "internal", message: "internal error" });
    expect(faults).toHaveLength(1);
    expect((await post(session, "/fine", Buffer.from("y"))).status).toBe(200);
  });

  it("keeps a session open past its idle time while a taken stream runs", async () => {
    let answer: (() => void) | undefined;
    const s = await start((stream) => {
      stream.on("data", () => undefined);
      stream.on("end", () => {
        answer = () => {
          stream.respond({ ":status": 200 });
          stream.end("late");
        };
      });
      return true;
    }, 150);
    const pending = post(s, "/slow", Buffer.from("z"));
    await new Promise((r) => setTimeout(r, 500)); // past the 150 ms idle time
    expect(s.closed || s.destroyed).toBe(false);
    answer!();
    expect((await pending).body.toString()).toBe("late");
  });
});
