/**
 * Writes a run's results: bench/results/latest.json (every figure with its conditions),
 * latest.md (the tables the README links) and latest.svg (throughput of the hit path against
 * the floor).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import os from "node:os";
import type { BenchSettings, ScenarioResult } from "./lib/context.ts";
import type { HitPoint } from "./scenarios/hits.ts";
import { PROTOCOL_LABEL, type Protocol } from "./lib/requests.ts";

export interface RunReport {
  settings: BenchSettings;
  results: ScenarioResult[];
  failures: Array<{ id: string; error: string }>;
  totalS: number;
}

export function machine() {
  const cpus = os.cpus();
  let commit = "unknown";
  try {
    commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    // not a git checkout: the commit stays unknown
  }
  return {
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cores: cpus.length,
    cpu: cpus[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    commit,
    date: new Date().toISOString(),
  };
}

const cell = (v: string | number) => String(v).replace(/\|/g, "\\|");

export function renderMarkdown(report: RunReport, m: ReturnType<typeof machine>): string {
  const s = report.settings;
  const out: string[] = [];
  out.push("# shotgrid-cache benchmark: latest run", "");
  out.push(
    `Node ${m.node}, ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, ${m.platform}; commit ${m.commit}; ${m.date}; ` +
      `whole run ${report.totalS.toFixed(0)} s${s.quick ? "; **quick mode: smoke run, the numbers mean little**" : ""}.`,
    "",
    "Everything runs on this one machine over loopback (127.0.0.1); the load generator, the service, the simulated site and the floor server are separate processes. " +
      "Figures from one run are comparable with each other; across runs and machines, compare ratios, not absolute numbers.",
    "",
  );
  const targets = report.results.flatMap((r) => r.targets);
  if (targets.length) {
    out.push("## Targets", "", "| target | reached | |", "| --- | --- | --- |");
    for (const t of targets) out.push(`| ${cell(t.target)} | ${cell(t.reached)} | ${t.pass === null ? "not measured" : t.pass ? "pass" : "**FAIL**"} |`);
    out.push("");
  }
  for (const r of report.results) {
    out.push(`## ${r.title}`, "");
    for (const c of r.conditions) out.push(`- ${c}`);
    out.push("");
    if (r.rows.length) {
      out.push(`| ${r.columns.map(cell).join(" | ")} |`, `| ${r.columns.map(() => "---").join(" | ")} |`);
      for (const row of r.rows) out.push(`| ${row.map(cell).join(" | ")} |`);
      out.push("");
    }
    for (const n of r.notes) out.push(`> ${n}`, ">");
    if (r.notes.length) out.pop();
    out.push("");
  }
  if (report.failures.length) {
    out.push("## Scenarios that failed in this run", "");
    for (const f of report.failures) out.push(`- ${f.id}: ${f.error.split("\n")[0]}`);
    out.push("");
  }
  return out.join("\n");
}

const esc = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Grouped horizontal bars: req/s of the floor and of GetEntity hits per protocol, per connection count. */
export function renderSvg(points: HitPoint[], subtitle: string): string {
  const levels = [...new Set(points.map((p) => p.connections))].sort((a, b) => a - b);
  const labels: Array<[string, (p: HitPoint) => boolean]> = [
    ["floor: bare node:http", (p) => p.target === "floor" && p.protocol === "http-get"],
    ["floor: bare node:http2, gRPC-shaped", (p) => p.target === "floor" && p.protocol === "grpc-h2c"],
    ...(Object.keys(PROTOCOL_LABEL) as Protocol[]).map((pr): [string, (p: HitPoint) => boolean] => [
      `GetEntity, ${PROTOCOL_LABEL[pr]}`,
      (p) => p.method === "GetEntity" && p.protocol === pr,
    ]),
    ["Query, Connect JSON POST (HTTP/1.1)", (p) => p.method === "Query" && p.protocol === "connect-json-post"],
  ];
  const max = Math.max(1, ...points.map((p) => p.result.rps));
  const colors = ["#9ecae1", "#3182bd", "#08519c", "#6baed6"];
  const barH = 14;
  const groupH = levels.length * barH + 12;
  const left = 290;
  const width = 900;
  const plotW = width - left - 90;
  const top = 60;
  const height = top + labels.length * groupH + 40;
  const svg: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="22" font-size="16" font-weight="bold">Cache hits vs the bare node:http floor: requests per second (higher is better)</text>`,
    `<text x="10" y="42" fill="#555">${esc(subtitle)}</text>`,
  ];
  labels.forEach(([label, match], gi) => {
    const y0 = top + gi * groupH;
    svg.push(`<text x="${left - 8}" y="${y0 + (levels.length * barH) / 2 + 4}" text-anchor="end">${esc(label)}</text>`);
    levels.forEach((c, li) => {
      const p = points.find((q) => q.connections === c && match(q));
      const y = y0 + li * barH;
      if (!p) return;
      const w = Math.max(1, (p.result.rps / max) * plotW);
      svg.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH - 2}" fill="${colors[li % colors.length]}"/>`);
      svg.push(
        `<text x="${(left + w + 4).toFixed(1)}" y="${y + barH - 4}" fill="#333">${Math.round(p.result.rps).toLocaleString("en-US")} (p99 ${p.result.latency.p99Ms.toFixed(1)} ms)</text>`,
      );
    });
  });
  const ly = height - 18;
  levels.forEach((c, li) => {
    svg.push(`<rect x="${left + li * 140}" y="${ly - 10}" width="12" height="12" fill="${colors[li % colors.length]}"/>`);
    svg.push(`<text x="${left + li * 140 + 16}" y="${ly}">${c} connection${c === 1 ? "" : "s"}</text>`);
  });
  svg.push("</svg>");
  return `${svg.join("\n")}\n`;
}

/** Write latest.json, latest.md and latest.svg under bench/results; returns the paths. */
export async function writeReport(report: RunReport): Promise<string[]> {
  const dir = report.settings.outDir.endsWith("/") ? report.settings.outDir : `${report.settings.outDir}/`;
  mkdirSync(dir, { recursive: true });
  const m = machine();
  const json = { machine: m, settings: report.settings, totalS: report.totalS, failures: report.failures, scenarios: report.results };
  const files = [`${dir}latest.json`, `${dir}latest.md`];
  writeFileSync(files[0]!, `${JSON.stringify(json, null, 2)}\n`);
  writeFileSync(files[1]!, renderMarkdown(report, m));
  const hits = report.results.find((r) => r.id === "hits");
  if (hits) {
    const points = (hits.data as { points: HitPoint[] }).points;
    const svgPath = `${dir}latest.svg`;
    writeFileSync(
      svgPath,
      renderSvg(points, `Node ${m.node}, ${m.cores} cores, loopback, ${report.settings.durationMs / 1000} s per point; ${m.date.slice(0, 10)}`),
    );
    files.push(svgPath);
  }
  return files;
}
