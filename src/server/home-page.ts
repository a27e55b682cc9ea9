/**
 * `GET /`: what this service is and how to talk to it, so a person who opens the port in a
 * browser or curls it learns the endpoints instead of meeting a bare 404. HTML for browsers,
 * plain text otherwise. When the server keeps status figures (src/status), a browser gets the live
 * status page instead, with these endpoints folded in at its foot.
 */
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { CacheService } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { escapeHtml as esc, statusPageHtml } from "../status/status-page.ts";

export interface HomePageInfo {
  version: string;
  /** "demo" or "site". */
  mode: string;
  /** Where the cache lives: "memory" or "redis". */
  store?: string;
  /** Whether `/metrics` is served. */
  metrics: boolean;
  /** Whether `/status.json` is served: browsers then get the live status page. */
  status?: boolean;
}

export interface HomePage {
  contentType: string;
  body: string;
}

/** The page for one request: `accept` chooses HTML or text, `host` goes into the example command. */
export function homePage(info: HomePageInfo, accept: string | undefined, host: string | undefined): HomePage {
  const base = `http://${host && /^[A-Za-z0-9.\-:[\]]+$/.test(host) ? host : "localhost:8080"}`;
  const lines = describe(info, base);
  if (/\btext\/html\b/i.test(accept ?? "")) return { contentType: "text/html", body: html(info, lines) };
  return {
    contentType: "text/plain",
    body: `${lines.map(([head, body]) => (head ? `${head}\n${body.map((l) => `  ${l}`).join("\n")}` : body.join("\n"))).join("\n\n")}\n`,
  };
}

/** The example every user can run first (a Shot with id 1 exists in the demo studio). */
export function firstCommand(base: string): string {
  return `curl -s ${base}/${CacheService.typeName}/GetEntity -H 'content-type: application/json' -d '{"entityType":"Shot","id":1}'`;
}

type Section = [heading: string, lines: string[]];

function describe(info: HomePageInfo, base: string): Section[] {
  const mode =
    info.mode === "demo"
      ? "demo (a built-in simulated ShotGrid site, no real site configured)"
      : info.mode === "site"
        ? "site (following a ShotGrid site)"
        : info.mode;
  const store = info.store === "redis" ? "Redis (shared by every instance)" : info.store === "memory" ? "memory (this process)" : (info.store ?? "unknown");
  const methods = CacheService.methods.map((m) => {
    const kind =
      m.methodKind === "server_streaming"
        ? "server stream"
        : m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS
          ? "unary; Connect GET also works"
          : "unary";
    return `/${CacheService.typeName}/${m.name}  (${kind})`;
  });
  return [
    ["", [`shotgrid-cache ${info.version}: a caching intermediary in front of ShotGrid`, `mode: ${mode}`, `cache: ${store}`]],
    ["Try:", [firstCommand(base)]],
    [`RPCs (Connect JSON or binary, gRPC and gRPC-web, all on this port; service ${CacheService.typeName}):`, methods],
    [
      "Plain HTTP:",
      [
        "GET /healthz  liveness, version and mode",
        "GET /readyz   readiness (503 while preloading or shutting down) and event-follow lag",
        ...(info.metrics ? ["GET /metrics  Prometheus metrics"] : []),
        ...(info.status ? ["GET /status   this live status page (a browser on / gets it too); GET /status.json its figures"] : []),
      ],
    ],
    [
      "gRPC server reflection (v1 and v1alpha), for tools without the .proto files:",
      [`npx buf curl --protocol grpc --http2-prior-knowledge --list-services ${base}`],
    ],
  ];
}

function html(info: HomePageInfo, sections: Section[]): string {
  const [intro, ...rest] = sections;
  const endpoints = rest.map(([head, lines]) => `<h2>${esc(head)}</h2>\n<pre>${lines.map(esc).join("\n")}</pre>`);
  if (info.status) return statusPageHtml(info.version, [...intro![1].slice(1).map((l) => `<p>${esc(l)}</p>`), ...endpoints].join("\n"));
  return [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8"><title>shotgrid-cache ${esc(info.version)}</title>`,
    "<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}code,pre{background:#f4f4f4}pre{padding:.5rem;overflow-x:auto}</style></head><body>",
    `<h1>${esc(intro![1][0]!)}</h1>`,
    ...intro![1].slice(1).map((l) => `<p>${esc(l)}</p>`),
    ...endpoints,
    "</body></html>",
    "",
  ].join("\n");
}
