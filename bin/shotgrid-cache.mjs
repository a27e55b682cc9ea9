#!/usr/bin/env node
// Entry point of the `shotgrid-cache` command. The sources are TypeScript; tsx compiles them on
// load so the command works straight after `npm install`, with no build step to forget.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/index.ts");
await main(process.argv.slice(2));
