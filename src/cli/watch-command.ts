/**
 * `shotgrid-cache watch [Type,…] [--project 3]`: print changes as the service applies them,
 * until Ctrl-C. A dropped connection (the service restarting, a network blip) is retried with a
 * growing pause, resuming after the last event id seen, so nothing is skipped; when the service
 * cannot replay from there it says "resync", and so does this command.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { type Change, ChangeKind } from "../../gen/shotgrid/cache/v1/cache_pb.ts";
import { parseIntOption, UsageError } from "./args.ts";
import { commaList, describeCallError, parseCommand, stringValue } from "./client-connection.ts";
import { jsonLine } from "./output.ts";

const USAGE = `usage: shotgrid-cache watch [EntityType[,EntityType…]] [--project ID[,ID…]] [options]

Prints each change to the cache as it happens, until Ctrl-C. Reconnects by itself after a dropped
connection and resumes after the last event seen.`;

const OPTIONS = {
  project: { kind: "string", help: "only changes in these projects (ids, comma-separated)" },
  since: { kind: "string", help: "first replay the changes after this event id (default: from now on)" },
} as const;

/** Codes after which the stream is opened again: the service went away or broke the stream. */
const RETRY = new Set([Code.Unavailable, Code.Unknown, Code.Internal, Code.DeadlineExceeded, Code.Aborted, Code.Canceled]);
const KIND_NAME: Record<ChangeKind, string> = {
  [ChangeKind.UNSPECIFIED]: "unknown",
  [ChangeKind.NEW]: "new",
  [ChangeKind.CHANGE]: "change",
  [ChangeKind.RETIREMENT]: "retirement",
  [ChangeKind.REVIVAL]: "revival",
};

export async function runWatch(argv: string[]): Promise<void> {
  const parsed = parseCommand(argv, USAGE, OPTIONS);
  if (!parsed) return;
  const { args, connection } = parsed;
  if (args.positionals.length > 1) throw new UsageError(`give the entity types as one comma-separated list, e.g. watch Shot,Asset`);
  const entityTypes = commaList(args.positionals[0]);
  const projectIds = commaList(stringValue(args, "project")).map((p) => parseIntOption("--project", p, 0, 1, 2_147_483_647));
  let since = BigInt(parseIntOption("--since", stringValue(args, "since"), 0, 0, Number.MAX_SAFE_INTEGER));

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let connected = false;
  let pauseMs = 500;
  try {
    while (!stop.signal.aborted) {
      try {
        const stream = connection.client.watchChanges({ entityTypes, projectIds, sinceEventId: since }, { signal: stop.signal, headers: connection.headers });
        for await (const msg of stream) {
          connected = true;
          pauseMs = 500;
          const m = msg.message;
          if (m.case === "change") {
            if (m.value.eventId > since) since = m.value.eventId;
            process.stdout.write(connection.output === "json" ? jsonLine(changeJson(m.value)) : changeLine(m.value));
          } else if (m.case === "heartbeat") {
            if (m.value.lastEventId > since) since = m.value.lastEventId;
          } else if (m.case === "resync") {
            since = m.value.resumeEventId;
            const { reason, resumeEventId } = m.value;
            process.stdout.write(
              connection.output === "json"
                ? jsonLine({ resync: { reason, resumeEventId: Number(resumeEventId) } })
                : `RESYNC: ${reason}; drop what you hold and read again (changes follow after event ${resumeEventId})\n`,
            );
          }
        }
        if (stop.signal.aborted) return;
        process.stderr.write(`shotgrid-cache watch: the service ended the stream; reconnecting after event ${since}\n`);
      } catch (err) {
        if (stop.signal.aborted) return;
        const ce = ConnectError.from(err);
        // Never connected: the URL, the token or the request is wrong; say so rather than wait forever.
        if (!connected || !RETRY.has(ce.code)) throw describeCallError(err, connection.url);
        process.stderr.write(`shotgrid-cache watch: ${describeCallError(err, connection.url).message}; reconnecting in ${pauseMs / 1000} s\n`);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pauseMs);
        stop.signal.addEventListener(
          "abort",
          () => {
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
      pauseMs = Math.min(pauseMs * 2, 10_000);
    }
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

function changeJson(c: Change) {
  return {
    eventId: Number(c.eventId),
    eventType: c.eventType,
    kind: KIND_NAME[c.kind],
    entityType: c.entityType,
    entityId: c.entityId,
    projectId: c.projectId,
    attributeName: c.attributeName,
    createdAt: c.createdAt
      ? timestampDate(c.createdAt)
          .toISOString()
          .replace(/\.\d{3}Z$/, "Z")
      : null,
    user: c.user ? { type: c.user.type, id: c.user.id, name: c.user.name } : null,
  };
}

function changeLine(c: Change): string {
  const j = changeJson(c);
  const parts = [
    `event ${j.eventId}`,
    j.createdAt?.replace("T", " ").replace("Z", "") ?? "",
    j.kind.padEnd(10),
    `${j.entityType} ${j.entityId}`,
    j.attributeName ? j.attributeName : "",
    j.projectId ? `project ${j.projectId}` : "",
    j.user ? `by ${j.user.name || `${j.user.type}:${j.user.id}`}` : "",
  ];
  return `${parts.filter(Boolean).join("  ")}\n`;
}
