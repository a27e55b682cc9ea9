/**
 * A tiny REST client for the simulator tests: real HTTP with fetch, one token per site.
 * (Deliberately not the product's REST client: the simulator tests must not depend on it.)
 */
import { startSimulator, type SimulatorHandle, type SimulatorOptions } from "../src/simulator/index.ts";

export const ARRAY_CT = "application/vnd+shotgun.api3_array+json";
export const HASH_CT = "application/vnd+shotgun.api3_hash+json";

export interface Answer {
  status: number;
  // Test code reads arbitrary JSON shapes.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
  contentType: string | null;
}

export interface TestSite {
  sim: SimulatorHandle;
  token: string;
  request(method: string, path: string, body?: unknown, contentType?: string, token?: string): Promise<Answer>;
  get(path: string): Promise<Answer>;
  search(type: string, body: unknown, contentType?: string): Promise<Answer>;
  close(): Promise<void>;
}

export async function fetchToken(url: string, form: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${url}/api/v1.1/auth/access_token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
    body: new URLSearchParams(form).toString(),
  });
  return toAnswer(res);
}

export async function toAnswer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: unknown;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, contentType: res.headers.get("content-type") };
}

export async function openSite(options: SimulatorOptions = {}): Promise<TestSite> {
  const sim = await startSimulator({ scriptName: "test-script", scriptKey: "test-key", ...options });
  const tok = await fetchToken(sim.url, { grant_type: "client_credentials", client_id: sim.scriptName, client_secret: options.scriptKey ?? "test-key" });
  if (tok.status !== 200) throw new Error(`token: ${tok.status} ${tok.text}`);
  const token = tok.body.access_token as string;
  const request = async (method: string, path: string, body?: unknown, contentType = "application/json", t = token) => {
    const res = await fetch(`${sim.url}${path.startsWith("/api") ? path : `/api/v1.1${path}`}`, {
      method,
      headers: { authorization: `Bearer ${t}`, accept: "application/json", ...(body === undefined ? {} : { "content-type": contentType }) },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return toAnswer(res);
  };
  return {
    sim,
    token,
    request,
    get: (path) => request("GET", path),
    search: (type, body, ct = ARRAY_CT) => request("POST", `/entity/${type}/_search`, body, ct),
    close: () => sim.close(),
  };
}
