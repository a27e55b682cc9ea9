/**
 * Server interceptors: RPC metrics and logs, ending streams on shutdown, and a default deadline.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import type { Logger } from "pino";
import type { Metrics } from "./metrics.ts";
import { clientFaultCode } from "./client-faults.ts";

/** Codes that mean the server (or ShotGrid behind it) failed, not the caller: logged as warnings. */
const SERVER_FAULTS = new Set<Code>([Code.Unknown, Code.Internal, Code.Unavailable, Code.DataLoss, Code.Unimplemented]);

export interface ObserveRpcsOptions {
  /** Count RPCs by method and code, time them, and count open streams. */
  metrics?: Metrics;
  /**
   * Log each finished RPC: debug when OK, info for caller errors, warn for server faults. Only
   * method, protocol-independent code, duration and the error message are logged; never
   * request bodies or headers (they may carry credentials).
   */
  logger?: Logger;
}

/** "package.Service/Method", computed once per method. */
const methodNames = new WeakMap<DescMethod, string>();
function methodName(method: DescMethod): string {
  let name = methodNames.get(method);
  if (name === undefined) methodNames.set(method, (name = `${method.parent.typeName}/${method.name}`));
  return name;
}

/**
 * Report one finished RPC `method` ("package.Service/Method") begun at `start`
 * (`performance.now()`): failed with `error`, canceled, or OK when neither.
 */
export type RpcFinished = (method: string, start: number, error: unknown, canceled: boolean) => void;

/**
 * The one place a finished RPC is counted and logged: `observeRpcs` calls it for every call
 * through the Connect handlers, the server's fast path for each hit it answers itself.
 */
export function rpcFinished(options: ObserveRpcsOptions): RpcFinished {
  const { metrics, logger } = options;
  return (name, start, error, canceled) => {
    const seconds = (performance.now() - start) / 1000;
    const failure = error !== undefined ? ConnectError.from(error) : undefined;
    const code = failure ? clientFaultCode(failure.code, failure.rawMessage) : canceled ? Code.Canceled : undefined;
    const codeName = code === undefined ? "ok" : codeToString(code);
    metrics?.rpcFinished(name, codeName, seconds);
    if (!logger) return;
    const ms = Math.round(seconds * 1e4) / 10;
    if (code === undefined) {
      if (logger.isLevelEnabled("debug")) logger.debug({ rpc: name, code: codeName, ms }, "rpc");
    } else {
      const level = SERVER_FAULTS.has(code) ? "warn" : "info";
      logger[level]({ rpc: name, code: codeName, ms, err: ConnectError.from(error ?? "canceled").rawMessage }, "rpc failed");
    }
  };
}

/** Metrics and logs for every RPC, unary and streaming. */
export function observeRpcs(options: ObserveRpcsOptions): Interceptor {
  const { metrics } = options;
  const finished = rpcFinished(options);
  const finish = (method: DescMethod, start: number, error: unknown, canceled: boolean) => finished(methodName(method), start, error, canceled);
  return (next) => async (req) => {
    const start = performance.now();
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await next(req);
    } catch (err) {
      finish(req.method, start, err, false);
      throw err;
    }
    if (!res.stream) {
      finish(req.method, start, undefined, false);
      return res;
    }
    metrics?.streamOpened();
    const signal = req.signal;
    const method = req.method;
    return {
      ...res,
      message: observeStream(res.message, (error) => {
        metrics?.streamClosed();
        // Ended by the consumer with no error: the client went away or the deadline passed.
        finish(method, start, error, error === undefined && signal.aborted);
      }),
    };
  };
}

/**
 * `source`, calling `done` once when it ends: finished, failed, or returned early by the
 * consumer. A plain iterator rather than an async generator: this sits on every message of
 * every stream, and a generator layer costs several promises per message.
 */
function observeStream<T>(source: AsyncIterable<T>, done: (error: unknown) => void): AsyncIterable<T> {
  let finished = false;
  const finish = (error: unknown) => {
    if (finished) return;
    finished = true;
    done(error);
  };
  const onResult = (result: IteratorResult<T>) => {
    if (result.done) finish(undefined);
    return result;
  };
  const onError = (err: unknown): never => {
    finish(err);
    throw err;
  };
  return {
    [Symbol.asyncIterator]() {
      const it = source[Symbol.asyncIterator]();
      return {
        next: () => it.next().then(onResult, onError),
        return: (value?: unknown) => {
          finish(undefined);
          return it.return ? it.return(value) : Promise.resolve({ done: true, value: value as T });
        },
        throw: (err?: unknown) => {
          if (!it.throw) return onError(err) as never;
          return it.throw(err).then(onResult, onError);
        },
      };
    },
  };
}

/**
 * End every server stream cleanly (status OK) once `signal` aborts, even if the handler is
 * parked waiting for its next message. The handler is told to stop via `return()` and, as the
 * stream ends, its context signal aborts. Unary calls are untouched: they finish normally.
 */
export function endStreamsOn(signal: AbortSignal): Interceptor {
  // One listener for all streams: one per stream on this shared signal would pile up (and warn
  // past ten), and each stream only needs waking if it is parked when the signal aborts.
  const open = new Set<() => void>();
  signal.addEventListener(
    "abort",
    () => {
      for (const end of open) end();
    },
    { once: true },
  );
  return (next) => async (req) => {
    const res = await next(req);
    if (!res.stream) return res;
    return { ...res, message: untilAborted(res.message, signal, open) };
  };
}

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal, open: Set<() => void>): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  // Each wait gets its own short-lived promise, settled by the next message or by the abort.
  // Racing every message against one long-lived "aborted" promise instead would leave a
  // reaction on it per message, holding every message sent until the stream ends.
  let wake: ((result: IteratorResult<T>) => void) | undefined;
  const end = () => wake?.(DONE);
  let pending: Promise<IteratorResult<T>> | undefined;
  let finished = false;
  open.add(end);
  try {
    while (!signal.aborted) {
      const next = (pending = it.next());
      const result = await new Promise<IteratorResult<T>>((resolve, reject) => {
        wake = resolve;
        next.then(resolve, reject);
      });
      wake = undefined;
      if (result.done) {
        finished = result !== DONE;
        return;
      }
      pending = undefined;
      yield result.value;
    }
  } finally {
    open.delete(end);
    if (!finished) {
      // The losing next() may settle later; never let it become an unhandled rejection.
      pending?.catch(() => undefined);
      // Not awaited: a generator parked on an await only sees return() once it resumes.
      it.return?.()?.catch(() => undefined);
    }
  }
}

/**
 * Give unary calls that arrive without a deadline a default one: past it the client gets
 * deadline_exceeded. (The handler is not interrupted; its result is dropped.) Streams are
 * exempt: WatchChanges is meant to stay open.
 */
export function defaultDeadline(timeoutMs: number): Interceptor {
  return (next) => (req) => {
    if (req.stream || req.header.has("connect-timeout-ms") || req.header.has("grpc-timeout")) return next(req);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new ConnectError(`the call took longer than the server's default deadline of ${timeoutMs} ms`, Code.DeadlineExceeded)),
        timeoutMs,
      );
      next(req).then(
        (res) => {
          clearTimeout(timer);
          resolve(res);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err);
        },
      );
    });
  };
}
