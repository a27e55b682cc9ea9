/**
 * The `shotgrid-cache` command: `serve` (the cache service) and `simulator` (a simulated
 * ShotGrid site). Each command owns its options; this file only dispatches and reports errors.
 */
import { UsageError } from "./args.ts";
import { errorMessage } from "../logging/index.ts";

const USAGE = `usage: shotgrid-cache <command> [options]

Commands:
  serve       run the cache service (Connect, gRPC and gRPC-web on one port)
  simulator   run a simulated ShotGrid site (REST API v1.1 subset) for demos and tests
  auth        access control: "auth new-token" makes a client token and its auth file entry

Run "shotgrid-cache <command> --help" for a command's options.`;

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
    if (err instanceof UsageError) {
      process.stderr.write(`shotgrid-cache: ${err.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`shotgrid-cache: ${errorMessage(err)}\n`);
    process.exitCode = 1;
  }
}
