// Composition proven against this module's schema, not only against the session stand-in: the caller fixture
// (test/fixtures/caller-module) gets the client `dagger develop` would generate for its dependency on this module —
// replayed from the SDK's offline introspection of ci/src (test/helpers/dagger-codegen.ts) — and its own code is
// type-checked against it with its own tsconfig.json, as `dagger develop` + `tsc` do in ci.yml's real-engine job.
// What an engine adds and this cannot: the byte-exact generated client.gen.ts (Go codegen from the engine's
// GraphQL schema). Mistakes this catches: a renamed function or argument, an argument moved between positional
// and opts, a result that is no longer an object to chain, an enum key spelled other than the codegen spells it.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";
import { callerSdk } from "../helpers/dagger-codegen.js";
import { introspect } from "../helpers/introspect.js";

const FIXTURE = join(ROOT, "test/fixtures/caller-module");
const SDK = join(ROOT, "node_modules/@dagger.io/dagger/dist/src");
let work = "";

/** A copy of the fixture with its generated sdk/, its source optionally edited; tsc's verdict on it. */
function typeCheck(edit: (src: string) => string = (s) => s): { code: number; out: string } {
  const dir = mkdtempSync(join(work, "caller-"));
  for (const f of ["dagger.json", "tsconfig.json", "pipeline.yaml", "src"])
    cpSync(join(FIXTURE, f), join(dir, f), { recursive: true });
  writeFileSync(join(dir, "src/index.ts"), edit(readFileSync(join(FIXTURE, "src/index.ts"), "utf8")));
  mkdirSync(join(dir, "sdk"));
  writeFileSync(join(dir, "sdk/index.ts"), callerSdk(introspect(), "hamalog", SDK));
  writeFileSync(join(dir, "sdk/telemetry.ts"), `export * from "${SDK}/telemetry/index.js";\n`);
  const r = spawnSync(
    process.execPath,
    [join(ROOT, "node_modules/typescript/bin/tsc"), "-p", join(dir, "tsconfig.json")],
    {
      cwd: dir,
      encoding: "utf8",
      timeout: 300_000,
    },
  );
  return { code: r.status ?? 1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(() => {
  // Inside the repository (.cache/ is ignored), so the copy resolves the SDK's own dependencies as the root does.
  mkdirSync(join(ROOT, ".cache"), { recursive: true });
  work = mkdtempSync(join(ROOT, ".cache", "caller-codegen-"));
});
afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("the caller fixture against a client generated from this module's schema", () => {
  it("composes this module from its own directory: defaultPath `.`, the dependency at the repository root", () => {
    const dj = JSON.parse(readFileSync(join(FIXTURE, "dagger.json"), "utf8"));
    expect(dj.dependencies).toEqual([{ name: "hamalog", source: "../../.." }]);
    expect(join(FIXTURE, dj.dependencies[0].source)).toBe(join(ROOT, "."));
    const caller = introspect("test/fixtures/caller-module/src", "caller").objects.Caller!;
    expect(Object.keys(caller.methods)).toEqual(["release", "digest", "plan"]);
    for (const fn of Object.values(caller.methods)) expect(fn.arguments.source!.defaultPath, fn.name).toBe(".");
  });

  it("type-checks with the fixture's own tsconfig", () => {
    const r = typeCheck();
    expect(r.out).toBe("");
    expect(r.code).toBe(0);
  });

  it.each([
    [
      "an enum key spelled as the CLI spells it",
      (s: string) => s.replace("HamalogStrategy.BlueGreen", "HamalogStrategy.BLUE_GREEN"),
      /Property 'BLUE_GREEN' does not exist on type 'typeof HamalogStrategy'/,
    ],
    [
      "an optional argument passed positionally",
      (s: string) => s.replace(".verifyManifest({ sha })", ".verifyManifest(sha)"),
      /verifyManifest\(sha\)|Type 'string' has no properties in common|is not assignable to parameter of type 'HamalogVerifyManifestOpts'/,
    ],
    [
      "a required argument left out",
      (s: string) => s.replace('.ship(sha, "main", token, sshKey)', '.ship(sha, "main", token)'),
      /Expected 4-5 arguments, but got 3/,
    ],
    [
      "a field a Shipment does not have",
      (s: string) =>
        s.replace('.ship(sha, "main", token, sshKey).summary()', '.ship(sha, "main", token, sshKey).digest()'),
      /Property 'digest' does not exist on type 'HamalogShipment'/,
    ],
  ])("fails on %s (so the check above can fail)", (_what, edit, error) => {
    const r = typeCheck(edit);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(error);
  });
});
