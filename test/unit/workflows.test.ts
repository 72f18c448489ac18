// The GitHub Actions wrapper stays thin: every workflow is parsed and checked for what must never come back
// (image names, tags, metadata-action, build-push-action, secrets outside env://), and deploy.yml is checked
// against the module it calls (ship's arguments, Secret types) and dagger.json's engine version.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parseConfig } from "../../ci/src/config.js";
import { ROOT } from "../helpers/cli.js";
import { introspect } from "../helpers/introspect.js";

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
  return Object.values(wf(f).jobs as Record<string, { steps: Step[] }>).flatMap((j) => j.steps);
}
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
      [/:latest\b|type=sha|\bsha-|\{\{\s*branch\s*\}\}|prefix=/, "tag construction (tags come from ci/src/tags.ts)"],
      [
        /\bdocker (build|push|tag|login|pull)\b|deploy\.sh|(^|\s)(ssh|scp|sed)\s/,
        "a hand-written build/push/deploy step",
      ],
      [/\bGITHUB_SHA\b|github\.sha\b(?!\s*\}\})/, "the sha used outside `--sha=${{ github.sha }}`"],
    ];
    for (const [path, value] of all) {
      for (const [re, what] of forbidden) expect(value, `${f}: ${path} contains ${what}`).not.toMatch(re);
    }
  });

  it.each(files)("%s passes secrets only through a step's env, to env:// Secret arguments", (f) => {
    for (const [path, value] of strings(wf(f))) {
      if (!/secrets\./.test(value)) continue;
      // Only `env: { NAME: ${{ secrets.X }} }` on a step.
      expect(path, `${f}: ${path}`).toMatch(/^jobs\.[^.]+\.steps\[\d+\]\.env\.[A-Z_][A-Z0-9_]*$/);
      expect(value.trim()).toMatch(/^\$\{\{\s*secrets\.[A-Za-z_][A-Za-z0-9_]*\s*\}\}$/);
    }
    for (const s of steps(f)) {
      const args = String(s.with?.args ?? s.with?.call ?? "");
      for (const name of Object.keys(s.env ?? {})) {
        // The value is an env var name handed to Dagger as a Secret, never expanded in the command line.
        expect(args, `${f}: ${name}`).toContain(`env://${name}`);
        expect(args).not.toMatch(new RegExp(`\\$${name}\\b|\\$\\{${name}\\}`));
      }
      expect(String(s.run ?? ""), `${f}: a run step sees no secret`).not.toMatch(/secrets\./);
    }
  });
});

describe("deploy.yml", () => {
  const doc = wf("deploy.yml");
  const all = steps("deploy.yml");
  const dagger = all.find((s) => s.uses?.startsWith("dagger/dagger-for-github@"));
  // Words of the command line; `${{ expr }}` stays one word, as the runner substitutes it before the shell splits.
  const args = String(dagger?.with?.args ?? "").match(/(?:\$\{\{[^}]*\}\}|[^\s])+/g) ?? [];

  it("runs on pushes to the default branch from pipeline.yaml and on manual dispatch", () => {
    expect(doc.on.push).toEqual({ branches: [pipeline.defaultBranch] });
    expect(doc.on).toHaveProperty("workflow_dispatch");
    expect(Object.keys(doc.on).sort()).toEqual(["push", "workflow_dispatch"]);
  });

  it("never runs two deploys at once and may push packages, nothing more", () => {
    expect(doc.concurrency.group).toMatch(/\S/);
    expect(doc.concurrency.group).not.toMatch(/\$\{\{/); // one group for all runs, not one per branch or sha
    expect(doc.concurrency["cancel-in-progress"]).toBe(false);
    expect(doc.permissions).toEqual({ contents: "read", packages: "write" });
  });

  it("is checkout + one dagger-for-github step pinned to dagger.json's engine version", () => {
    expect(all.map((s) => s.uses?.replace(/@.*/, ""))).toEqual(["actions/checkout", "dagger/dagger-for-github"]);
    expect(dagger!.uses).toMatch(/@v\d+\.\d+\.\d+$/);
    expect(dagger!.with!.version).toBe(engineVersion);
    expect(engineVersion).toBe("v0.21.9");
    expect(dagger!.with!.verb).toBe("call");
  });

  it("calls ship with the sha and branch passed explicitly", () => {
    expect(args[0]).toBe("ship");
    expect(args).toContain("--sha=${{ github.sha }}");
    expect(args).toContain("--branch=${{ github.ref_name }}");
  });

  it("passes only arguments ship has, and every Secret argument as env://", () => {
    const ship = introspect().objects.Hamalog!.methods.ship;
    expect(ship, "the module has a ship function").toBeDefined();
    for (const a of args.slice(1)) {
      const m = /^--([a-z][a-z0-9-]*)=(.+)$/.exec(a);
      expect(m, a).not.toBeNull();
      const arg = ship!.arguments[kebabToCamel(m![1]!)];
      expect(arg, `ship has --${m![1]}`).toBeDefined();
      if (arg!.type.name === "Secret") expect(m![2], `--${m![1]} is a Secret`).toMatch(/^env:\/\/[A-Z_][A-Z0-9_]*$/);
      else expect(m![2]).not.toMatch(/^env:\/\//);
    }
    for (const arg of Object.values(ship!.arguments)) {
      if (!arg.isOptional && arg.defaultPath === undefined && arg.defaultValue === undefined)
        expect(args.join(" "), `required --${arg.name}`).toMatch(
          new RegExp(`--${arg.name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}=`),
        );
    }
  });
});

describe("ci.yml", () => {
  const doc = wf("ci.yml");
  it("runs the README's test command on pull requests and pushes", () => {
    expect(Object.keys(doc.on).sort()).toEqual(["pull_request", "push"]);
    expect(readFileSync(join(ROOT, "README.md"), "utf8")).toMatch(/^npm test\b/m);
    const runs = steps("ci.yml")
      .map((s) => s.run ?? "")
      .filter(Boolean);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatch(/(^|\s)npm test$/);
    expect(doc.permissions).toEqual({ contents: "read" });
  });
});
