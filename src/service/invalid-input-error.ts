/** A request field that fails validation: becomes InvalidArgument naming the field and reason. */
export class InvalidInputError extends Error {
  override readonly name = "InvalidInputError";
  constructor(
    /** Where in the request, e.g. `filters[0][1]` or `fields[2]`. */
    readonly field: string,
    /** Why, in words a pipeline TD can act on. */
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
  }
}

/** Characters of an input value an error message shows at most. */
export const ECHO_MAX_CHARS = 64;

/**
 * An input value as an error message quotes it: in double quotes, cut to its first
 * `ECHO_MAX_CHARS` characters with its full size in bytes after, so that a huge value (a 200 KB
 * type name) never comes back whole. Every error that quotes input goes through here.
 */
export function quote(value: string): string {
  if (value.length <= ECHO_MAX_CHARS) return `"${value}"`;
  return `"${value.slice(0, ECHO_MAX_CHARS)}"…(${Buffer.byteLength(value, "utf8")} bytes)`;
}
