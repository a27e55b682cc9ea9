export { buildReport, type StatusContext, type StatusReport } from "./status-report.ts";
export { RECENT_CHANGES, type Sample, StatusSampler, type StatusSamplerOptions } from "./status-sampler.ts";
export { escapeHtml, statusPageHtml } from "./status-page.ts";
