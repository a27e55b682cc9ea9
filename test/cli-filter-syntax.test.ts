/**
 * The `--filter` mini-language of `shotgrid-cache find` (src/cli/filter-syntax.ts): how values
 * are typed by how they are written, and the errors, each naming the filter and the reason.
 */
import { describe, expect, it } from "vitest";
import { UsageError } from "../src/cli/args.ts";
import { parseFilter } from "../src/cli/filter-syntax.ts";

function error(text: string): string {
  try {
    parseFilter(text);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${text}`);
}

describe("--filter", () => {
  it("types unquoted values: null, booleans, numbers without leading zeros, Type:id links, else text", () => {
    expect(parseFilter("sg_sequence is null")).toEqual(["sg_sequence", "is", null]);
    expect(parseFilter("sg_omit is true")).toEqual(["sg_omit", "is", true]);
    expect(parseFilter("sg_omit is_not false")).toEqual(["sg_omit", "is_not", false]);
    expect(parseFilter("id greater_than 40")).toEqual(["id", "greater_than", 40]);
    expect(parseFilter("sg_cut_in less_than -2.5")).toEqual(["sg_cut_in", "less_than", -2.5]);
    expect(parseFilter("code is 010")).toEqual(["code", "is", "010"]);
    expect(parseFilter("project is Project:2")).toEqual(["project", "is", { type: "Project", id: 2 }]);
    expect(parseFilter("code is project:2")).toEqual(["code", "is", "project:2"]);
    expect(parseFilter("project.Project.name is  Northern Lights ")).toEqual(["project.Project.name", "is", "Northern Lights"]);
  });

  it("quoted values are text as written: commas, spaces, number-like, escapes", () => {
    expect(parseFilter('code is "010"')).toEqual(["code", "is", "010"]);
    expect(parseFilter('description contains "a, b"')).toEqual(["description", "contains", "a, b"]);
    expect(parseFilter('code is "  padded "')).toEqual(["code", "is", "  padded "]);
    expect(parseFilter('code is "say \\"hi\\" \\\\ bye"')).toEqual(["code", "is", 'say "hi" \\ bye']);
    expect(parseFilter('code is ""')).toEqual(["code", "is", ""]);
    expect(parseFilter('code is "null"')).toEqual(["code", "is", "null"]);
  });

  it("takes as many values as the operator does", () => {
    expect(parseFilter("sg_status_list in ip, rdy ,fin")).toEqual(["sg_status_list", "in", ["ip", "rdy", "fin"]]);
    expect(parseFilter("sg_status_list not_in ip")).toEqual(["sg_status_list", "not_in", ["ip"]]);
    expect(parseFilter('code in "a,b",c')).toEqual(["code", "in", ["a,b", "c"]]);
    expect(parseFilter("id between 10,20")).toEqual(["id", "between", 10, 20]);
    expect(parseFilter("updated_at in_last 7 DAY")).toEqual(["updated_at", "in_last", 7, "DAY"]);
    expect(parseFilter("updated_at not_in_next 2,WEEK")).toEqual(["updated_at", "not_in_next", 2, "WEEK"]);
  });

  it("names the filter and the reason when it cannot be read", () => {
    expect(error("code")).toBe(`--filter "code": expected "<field> <operator> <value>", e.g. "sg_status_list in ip,rdy"`);
    expect(error("code iss x")).toMatch(/^--filter "code iss x": unknown operator "iss"; one of is, is_not, /);
    expect(error("code is")).toBe(`--filter "code is": "is" needs a value (write null for an empty field)`);
    expect(error("code is a,b")).toBe(`--filter "code is a,b": "is" takes one value, got 2; quote a value that holds a comma: "a, b"`);
    expect(error("id between 1")).toBe(`--filter "id between 1": "between" takes two values separated by a comma (low,high), got 1`);
    expect(error("updated_at in_last 7")).toBe(
      `--filter "updated_at in_last 7": "in_last" takes a count and a unit, e.g. "updated_at in_last 7 DAY", got 1 values`,
    );
    expect(error('code is "open')).toBe(`--filter "code is "open": a quoted value is not closed (a " is missing)`);
    expect(error('code is "a" b')).toBe(`--filter "code is "a" b": unexpected text after the quoted value "a"; separate values with commas`);
    expect(error('code is "a\\n"')).toBe(`--filter "code is "a\\n"": inside quotes only \\" and \\\\ are escapes, got \\n`);
    expect(error("code in a,,b")).toBe(`--filter "code in a,,b": an empty value between commas (quote it to mean empty text: "")`);
    expect(error("code in a,")).toBe(`--filter "code in a,": a value is missing after the last comma`);
    expect(error('code is a"b')).toBe(`--filter "code is a"b": a quote inside the value a"b; quote the whole value and write \\" for a quote`);
  });
});
