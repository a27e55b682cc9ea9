/**
 * Errors the simulated site answers with, in ShotGrid's REST envelope
 * `{"errors":[{"id","status","code","title","detail","source","meta"}]}`.
 */
import { randomBytes } from "node:crypto";

/** ShotGrid's numeric error codes used by the REST API. */
export const SG_CODES = {
  badCredentials: 102,
  badRequest: 103,
  notFound: 104,
} as const;

export class SimError extends Error {
  override readonly name = "SimError";
  constructor(
    readonly status: number,
    readonly code: number,
    readonly title: string,
    readonly detail: string | null = null,
    readonly source: unknown = null,
  ) {
    super(`${status} ${code} ${title}${detail ? `: ${detail}` : ""}`);
  }

  /** The JSON body the site answers with. */
  envelope(): { errors: Array<Record<string, unknown>> } {
    return {
      errors: [
        {
          id: randomBytes(16).toString("hex"),
          status: this.status,
          code: this.code,
          title: this.title,
          source: this.source,
          detail: this.detail,
          meta: null,
        },
      ],
    };
  }
}

/** 400 code 103: the request is not valid (with `source` naming what). */
export function badRequest(title: string, source: unknown = null, detail: string | null = null): SimError {
  return new SimError(400, SG_CODES.badRequest, title, detail, source);
}

/** 404 code 104 the way a read reports it: "Asset: 400000 not found". */
export function readNotFound(type: string, id: number | string): SimError {
  return new SimError(404, SG_CODES.notFound, "Not Found", `${type}: ${id} not found`);
}

/** 404 code 104 the way a write reports it: "Entity of type [Asset] with id=400000 does not exist." */
export function writeNotFound(type: string, id: number | string): SimError {
  return new SimError(404, SG_CODES.notFound, "Not Found", `Entity of type [${type}] with id=${id} does not exist.`);
}
