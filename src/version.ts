import { createRequire } from "node:module";

/** The package version, reported by /healthz and at start. */
export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
