// What `dagger call` accepts and prints for this module's enums, derived from the module's own introspection with
// the engine's naming rule (ci/core/dagger/enum-names.ts, ported from dagger v0.21.8 and strcase v0.3.0 and checked
// here against their own test tables), and held against docs/dagger.md and the config's values.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  cliEnumValue,
  enumFlagType,
  gqlEnumMemberName,
  isConventionalEnumMemberName,
  toCamel,
  toScreamingSnake,
  toSnake,
} from "../../ci/core/dagger/enum-names.js";
import { parseConfig } from "../../ci/core/config.js";
import { ROOT } from "../helpers/cli.js";
import { introspect } from "../helpers/introspect.js";

describe("the engine's naming rule, ported (vectors from the Go tests)", () => {
  it.each([
    // core/gqlformat_test.go TestEnumMemberNameFormatting
    ["ACTIVE", "ACTIVE"],
    ["P256", "P256"],
    ["P_256", "P_256"],
    ["X25519", "X25519"],
    ["ED25519", "ED25519"],
    ["fooBar", "FOO_BAR"],
    ["foo-bar", "FOO_BAR"],
    ["p256", "P_256"],
    // core/integration module_type_test.go / module_call_test.go expectations
    ["Active", "ACTIVE"],
    ["Inactive", "INACTIVE"],
    ["WEIRD", "WEIRD"],
    ["Typescript", "TYPESCRIPT"],
    ["PHP", "PHP"],
    // spellings this module could have picked for blue/green
    ["BlueGreen", "BLUE_GREEN"],
    ["blueGreen", "BLUE_GREEN"],
    ["blue_green", "BLUE_GREEN"],
    ["Bluegreen", "BLUEGREEN"],
    ["Http2", "HTTP_2"],
    ["HTTP2", "HTTP2"],
  ])("gqlEnumMemberName(%j) = %j", (name, want) => {
    expect(gqlEnumMemberName(name)).toBe(want);
  });

  it.each([
    ["ACTIVE", true],
    ["P_256", true],
    ["_X", false],
    ["__A", false],
    ["", false],
    ["1A", false],
    ["Ab", false],
  ])("isConventionalEnumMemberName(%j) = %j", (name, want) => {
    expect(isConventionalEnumMemberName(name)).toBe(want);
  });

  it.each([
    // strcase v0.3.0 snake_test.go toSnake
    ["testCase", "test_case"],
    ["TestCase", "test_case"],
    ["Test Case", "test_case"],
    [" Test Case", "test_case"],
    ["Test Case ", "test_case"],
    [" Test Case ", "test_case"],
    ["test", "test"],
    ["test_case", "test_case"],
    ["Test", "test"],
    ["", ""],
    ["ManyManyWords", "many_many_words"],
    ["manyManyWords", "many_many_words"],
    ["AnyKind of_string", "any_kind_of_string"],
    ["numbers2and55with000", "numbers_2_and_55_with_000"],
    ["JSONData", "json_data"],
    ["userID", "user_id"],
    ["AAAbbb", "aa_abbb"],
    ["1A2", "1_a_2"],
    ["A1B", "a_1_b"],
    ["A1A2A3", "a_1_a_2_a_3"],
    ["A1 A2 A3", "a_1_a_2_a_3"],
    ["AB1AB2AB3", "ab_1_ab_2_ab_3"],
    ["AB1 AB2 AB3", "ab_1_ab_2_ab_3"],
    ["some string", "some_string"],
    [" some string", "some_string"],
  ])("toSnake(%j) = %j", (input, want) => {
    expect(toSnake(input)).toBe(want);
  });

  it("toScreamingSnake (strcase's one vector)", () => {
    expect(toScreamingSnake("testCase")).toBe("TEST_CASE");
  });

  it.each([
    // strcase v0.3.0 camel_test.go toCamel
    ["test_case", "TestCase"],
    ["test.case", "TestCase"],
    ["test", "Test"],
    ["TestCase", "TestCase"],
    [" test  case ", "TestCase"],
    ["", ""],
    ["many_many_words", "ManyManyWords"],
    ["AnyKind of_string", "AnyKindOfString"],
    ["odd-fix", "OddFix"],
    ["numbers2And55with000", "Numbers2And55With000"],
    ["ID", "Id"],
    ["CONSTANT_CASE", "ConstantCase"],
    // the TypeScript codegen's enum keys (testdata/type_test_enum_with_directive_want.ts)
    ["EStarGZ", "EstarGz"],
    ["BLUE_GREEN", "BlueGreen"],
  ])("toCamel(%j) = %j", (input, want) => {
    expect(toCamel(input)).toBe(want);
  });

  it("the CLI's enum flag: a member name in any case, else its own error listing the names sorted", () => {
    const names = ["RECREATE", "BLUE_GREEN"];
    for (const v of ["blue_green", "BLUE_GREEN", "Blue_Green"]) expect(cliEnumValue(v, names)).toBe("BLUE_GREEN");
    expect(cliEnumValue("recreate", names)).toBe("RECREATE");
    expect(() => cliEnumValue("blue-green", names)).toThrow("value should be one of BLUE_GREEN,RECREATE");
    expect(() => cliEnumValue("bluegreen", names)).toThrow("value should be one of BLUE_GREEN,RECREATE");
    expect(enumFlagType(names)).toBe("BLUE_GREEN,RECREATE");
  });
});

/** Each enum of the module: its members' CLI names (derived) and values (what the functions receive). */
const ENUMS = Object.fromEntries(
  Object.values(introspect().enums).map((e) => [
    e.name,
    Object.values(e.values).map((m) => ({ name: m.name, cli: gqlEnumMemberName(m.name), value: m.value })),
  ]),
);

describe("this module's enums on the command line", () => {
  it("members are named as the engine names them, so the source spelling is the CLI's", () => {
    for (const [e, members] of Object.entries(ENUMS))
      for (const m of members) expect(m.cli, `${e}.${m.name} is already conventional`).toBe(m.name);
  });

  it("the CLI names: what `dagger call` prints and `--help` lists", () => {
    const cli = (e: string) => ENUMS[e]!.map((m) => m.cli);
    expect(cli("Strategy")).toEqual(["RECREATE", "BLUE_GREEN", "SWARM"]);
    expect(cli("Fallback")).toEqual(["NONE", "LATEST"]);
    expect(cli("DeployResult")).toEqual(["SUCCESS", "DRY_RUN", "ALREADY_LIVE"]);
    expect(enumFlagType(cli("Strategy"))).toBe("BLUE_GREEN,RECREATE,SWARM");
  });

  it.each(["Strategy", "Fallback"])(
    "every %s value is reachable from the CLI: `_` for the config's `-`, which is refused",
    (e) => {
      const names = ENUMS[e]!.map((m) => m.cli);
      for (const m of ENUMS[e]!) {
        expect(cliEnumValue(m.value.replace(/-/g, "_"), names)).toBe(m.cli);
        if (m.value.includes("-")) expect(() => cliEnumValue(m.value, names)).toThrow(/value should be one of/);
      }
    },
  );

  it.each([
    ["Strategy", "deploy/strategy", "strategy"],
    ["Fallback", "deploy/fallback", "fallback"],
  ])("%s's values are exactly %s's (a strategy added to the config needs its member here)", (e, path, key) => {
    const values = ENUMS[e]!.map((m) => m.value);
    for (const v of values) expect(parseConfig(`deploy:\n  ${key}: ${v}\n`).deploy[key as "strategy"]).toBe(v);
    let message = "";
    try {
      parseConfig(`deploy:\n  ${key}: not-a-${key}\n`);
    } catch (err) {
      message = (err as Error).message;
    }
    const listed = /expected one of ((?:"[^"]+"\|?)+)/
      .exec(message)?.[1]
      ?.split("|")
      .map((x) => JSON.parse(x) as string);
    expect(message, path).toMatch(new RegExp(`^${path}: `));
    expect(listed?.sort()).toEqual([...values].sort());
  });

  it("docs/dagger.md's table says exactly what the CLI accepts and prints, and the config's spelling", () => {
    const doc = readFileSync(join(ROOT, "docs/dagger.md"), "utf8");
    const row = (e: string) => doc.split("\n").find((l) => l.startsWith(`| \`${e}\``));
    const cells = (l: string) =>
      l
        .split("|")
        .slice(1, -1)
        .map((c) => c.trim());
    const ticks = (c: string) => [...c.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);
    for (const [e, members] of Object.entries(ENUMS)) {
      const r = row(e);
      expect(r, `docs/dagger.md has a row for ${e}`).toBeDefined();
      const [, , accepts, prints, config] = cells(r!);
      expect(ticks(prints!), `${e}: prints`).toEqual(members.map((m) => m.cli));
      expect(ticks(config!), `${e}: config`).toEqual(members.map((m) => m.value));
      if (e !== "DeployResult") {
        expect(ticks(accepts!), `${e}: accepts`).toEqual(members.map((m) => m.cli.toLowerCase()));
        for (const a of ticks(accepts!))
          expect(
            cliEnumValue(
              a,
              members.map((m) => m.cli),
            ),
          ).toBeDefined();
      }
    }
  });
});
