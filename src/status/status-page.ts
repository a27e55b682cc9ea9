/**
 * The status page's HTML: status-page.html (one file, inline CSS and JS, shipped in the package
 * under src/) with the version and the home page's endpoint list filled in. Read once, on first use.
 */
import { readFileSync } from "node:fs";

let template: string | undefined;

/** The page for `version`; `endpointsHtml` is already escaped HTML (home-page.ts makes it). */
export function statusPageHtml(version: string, endpointsHtml: string): string {
  template ??= readFileSync(new URL("./status-page.html", import.meta.url), "utf8");
  // Functions as replacements: a "$" in the inserted text must stay a "$".
  return template.replace(/\{\{VERSION\}\}/g, () => escapeHtml(version)).replace("{{HOME}}", () => endpointsHtml);
}

export function escapeHtml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}
