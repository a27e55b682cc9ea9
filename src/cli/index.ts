/**
 * The `shotgrid-cache` command: `serve` (the cache service), `simulator` (a simulated ShotGrid
 * site), `auth`, the client commands (`get`, `find`, `watch`, `status`) and `export`. Each
 * command owns its options; this file only dispatches and reports errors: one line on stderr,
 * exit 2 for a usage error, 1 for a failure.
 */
import { UsageError } from "./args.ts";
import { errorMessage } from "../logging/index.ts";

const USAGE = `usage: shotgrid-cache <command> [options]

Commands:
  serve       run the cache service (Connect, gRPC and gRPC-web on one port)
  simulator   run a simulated ShotGrid site (REST API v1.1 subset) for demos and tests
  auth        access control: "auth new-token" makes a client token and its auth file entry

  get         one record from the service:            get Shot 12 --fields code,sg_status_list
  find        records matching filters:               find Shot --filter "sg_status_list in ip,rdy"
  watch       print changes as they happen (Ctrl-C):  watch Shot --project 3
  status      the service's mode, follow lag, cache size and hit rate
  export      write snapshot files from a ShotGrid site: export --out DIR --site URL …

Run "shotgrid-cache <command> --help" for a command's options.`;

const ONE_LINE_ERRORS = ["get", "find", "watch", "status", "export"];

export async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "serve": {
        const { runServe } = await import("./serve-command.ts");
        await runServe(rest);
        return;
      }
      case "simulator": {
        const { runSimulator } = await import("../simulator/simulator-command.ts");
        await runSimulator(rest);
        return;
      }
      case "get":
        return await (await import("./get-command.ts")).runGet(rest);
      case "find":
        return await (await import("./find-command.ts")).runFind(rest);
      case "watch":
        return await (await import("./watch-command.ts")).runWatch(rest);
      case "status":
        return await (await import("./status-command.ts")).runStatus(rest);
      case "export":
        return await (await import("./export-command.ts")).runExport(rest);
      case "auth": {
        const { runAuth } = await import("../auth/auth-command.ts");
        await runAuth(rest);
        return;
      }
      case undefined:
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(`${USAGE}\n`);
        return;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    // The client commands (for people and scripts) say every error in one line, naming the command.
    const own = command !== undefined && ONE_LINE_ERRORS.includes(command);
    if (err instanceof UsageError) {
      process.stderr.write(
        own ? `shotgrid-cache ${command}: ${err.message} (see "shotgrid-cache ${command} --help")\n` : `shotgrid-cache: ${err.message}\n\n${USAGE}\n`,
      );
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`shotgrid-cache${own ? ` ${command}` : ""}: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  }
}
