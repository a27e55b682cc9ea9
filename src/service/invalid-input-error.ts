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
