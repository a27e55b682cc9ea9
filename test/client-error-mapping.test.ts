import { describe, expect, it } from "vitest";
import { mapErrorResponse } from "../src/shotgrid/error-mapping.ts";
import { AuthError, MalformedResponseError, NotFoundError, RequestRejectedError, UnavailableError } from "../src/shotgrid/errors.ts";
import { SecretRedactor } from "../src/shotgrid/redaction.ts";

const envelope = (status: number, code: number, title: string, detail: string | null = null) =>
  JSON.stringify({ errors: [{ id: "abc", status, code, title, detail, source: { field: ["x"] }, meta: null }] });

describe("error mapping", () => {
  const ctx = { request: "GET /api/v1.1/entity/Asset/400000" };

  it("keeps ShotGrid's code, title and detail on every mapped error", () => {
    const err = mapErrorResponse(404, envelope(404, 104, "Not Found", "Asset: 400000 not found"), ctx);
    expect(err).toBeInstanceOf(NotFoundError);
    expect(err.code).toBe("SG_NOT_FOUND");
    expect(err.shotgridCode).toBe(104);
    expect(err.details[0]).toMatchObject({
      id: "abc",
      status: 404,
      code: 104,
      title: "Not Found",
      detail: "Asset: 400000 not found",
      source: { field: ["x"] },
    });
    expect(err.message).toContain("Asset: 400000 not found");
    expect(err.message).toContain("GET /api/v1.1/entity/Asset/400000");
  });

  it.each([
    [400, 102, AuthError],
    [400, 103, RequestRejectedError],
    [403, 103, RequestRejectedError],
    [401, 103, AuthError],
    [400, 104, NotFoundError],
    [500, 0, UnavailableError],
    [503, 0, UnavailableError],
  ])("maps %i with code %i to %o", (status, code, cls) => {
    expect(mapErrorResponse(status, envelope(status, code, "t"), ctx)).toBeInstanceOf(cls);
  });

  it("maps every 4xx of the token endpoint to AuthError", () => {
    expect(mapErrorResponse(400, envelope(400, 103, "bad grant"), { ...ctx, auth: true })).toBeInstanceOf(AuthError);
  });

  it("calls a 4xx body that is not the envelope malformed, and a 5xx one unavailable", () => {
    const bad = mapErrorResponse(404, "<html>nginx</html>", ctx);
    expect(bad).toBeInstanceOf(MalformedResponseError);
    expect(bad.status).toBe(404);
    expect(mapErrorResponse(400, '{"oops":1}', ctx)).toBeInstanceOf(MalformedResponseError);
    expect(mapErrorResponse(502, "<html>Bad Gateway</html>", ctx)).toBeInstanceOf(UnavailableError);
  });

  it("strips secrets the site echoes back", () => {
    const r = new SecretRedactor();
    r.add("super-secret-key-123");
    const err = mapErrorResponse(400, envelope(400, 102, "Can't authenticate script with key super-secret-key-123"), { ...ctx, redact: r.redact });
    expect(err.message).not.toContain("super-secret-key-123");
    expect(err.details[0]!.title).not.toContain("super-secret-key-123");
    expect(err.message).toContain("[redacted]");
  });
});
