// Config inputs an attacker or a typo can produce: every validator rejects pathological input in linear time
// (well under a second), YAML bombs and oversized files are refused naming the file, wrong types are called
// type errors, and a padded host-key pin is normalised so it can match.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { hamalog } from "../helpers/cli.js";
import { parseConfig } from "../../ci/core/config.js";
import { parseSetPairs } from "../../ci/core/overrides.js";
import { ConfigError } from "../../ci/core/errors.js";

function timedError(fn: () => unknown): { error: ConfigError; ms: number } {
  const started = performance.now();
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return { error: e as ConfigError, ms: performance.now() - started };
  }
  throw new Error("expected a ConfigError");
}

const N = 100_000;

describe("validators run in linear time", () => {
  it.each([
    ["deploy/directory", "/home/deploy/production/hamalog-backend x", /deploy\/directory: must be an absolute path/],
    ["deploy/directory", `/${"aa/".repeat(N / 3)}!`, /deploy\/directory: must be an absolute path/],
    ["deploy/directory", `/${"a".repeat(N)} x`, /deploy\/directory/],
    ["deploy/host", `${"a".repeat(N)}!`, /deploy\/host: must be a host name/],
    ["deploy/host", `${"a.".repeat(N / 2)}-`, /deploy\/host: must be a host name/],
    ["deploy/host", `[${":".repeat(N)}x`, /deploy\/host/],
    ["deploy/user", `${"a".repeat(N)}!`, /deploy\/user/],
    ["deploy/hostKey", `SHA256:${"A".repeat(N)}`, /deploy\/hostKey/],
    ["deploy/health/url", `http://${"a".repeat(N)} x`, /deploy\/health\/url/],
    ["deploy/health/url", `http://a/${"a/".repeat(N / 2)}'`, /deploy\/health\/url/],
    ["deploy/service", `${"a".repeat(N)}!`, /deploy\/service/],
    ["deploy/project", `${"a-".repeat(N / 2)}!`, /deploy\/project/],
    ["deploy/platform", `linux/${"a".repeat(N)}/`, /deploy\/platform/],
    ["image/registry", `${"a-".repeat(N / 2)}!`, /image\/registry/],
    ["image/registry", `${"a.".repeat(N / 2)}-`, /image\/registry/],
    ["image/repository", `${"a-".repeat(N / 2)}!`, /image\/repository/],
    ["image/repository", `${"a_".repeat(N / 2)}!`, /image\/repository/],
    ["image/repository", `${"a/".repeat(N / 2)}!`, /image\/repository/],
  ])("%s: pathological value %# is rejected well under a second", (flag, value, re) => {
    for (const overrides of [{ [flag]: value }, parseSetPairs([`${flag}=${value}`])]) {
      const { error, ms } = timedError(() => parseConfig("", "pipeline.yaml", overrides));
      expect(error.message).toMatch(re);
      expect(ms).toBeLessThan(250);
    }
  });

  it("the same holds in the file", () => {
    const { error, ms } = timedError(() =>
      parseConfig(`deploy:\n  directory: "/${"aa/".repeat(15_000)} x"\n`, "my.yaml"),
    );
    expect(error.message).toMatch(/deploy\/directory: must be an absolute path/);
    expect(ms).toBeLessThan(250);
  });
});

describe("YAML and size bounds", () => {
  it("refuses an alias bomb naming the file", () => {
    let text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 0; i < 9; i++) {
      const name = `b${i}`;
      const prev = i === 0 ? "a" : `b${i - 1}`;
      text += `${name}: &${name} [${Array(10).fill(`*${prev}`).join(", ")}]\n`;
    }
    const { error, ms } = timedError(() => parseConfig(text, "bomb.yaml"));
    expect(error.message).toMatch(/^bomb\.yaml: too many YAML aliases/);
    expect(ms).toBeLessThan(1_000);
  });

  it("refuses a config over 64 KiB before parsing it", () => {
    const text = `image:\n  source: "${"x".repeat(54 * 1024 * 1024)}"\n`;
    const { error, ms } = timedError(() => parseConfig(text, "big.yaml"));
    expect(error.message).toMatch(/^big\.yaml: \d+ bytes is larger than the 64 KiB a pipeline config may be/);
    expect(ms).toBeLessThan(1_000);
  });

  it("finds a duplicate key among thousands in one pass, with its line", () => {
    let text = "build:\n  buildArgs:\n";
    for (let i = 0; i < 5_000; i++) text += `    k${i}: v\n`;
    text += "    k17: again\n";
    const { error, ms } = timedError(() => parseConfig(text, "dup.yaml"));
    expect(error.message).toMatch(/^dup\.yaml:5003:5: YAML syntax error: duplicate key `k17`/);
    expect(ms).toBeLessThan(1_000);
  });
});

describe("the CLI exits 2 for every config problem, naming the file", () => {
  const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
  for (let i = 0; i < 6; i++)
    bomb.push(
      `b${i}: &b${i} [${Array(10)
        .fill(i ? `*b${i - 1}` : "*a")
        .join(", ")}]`,
    );
  it.each([
    ["an alias bomb", `${bomb.join("\n")}\n`, /bomb\.yaml: too many YAML aliases/],
    ["an oversized file", `# ${"x".repeat(200_000)}\n`, /bomb\.yaml: \d+ bytes is larger than the 64 KiB/],
    ["a wrong type", 'deploy:\n  port: "22"\n', /deploy\/port: must be a number, got a string/],
  ])("%s", async (_, text, re) => {
    const dir = mkdtempSync(join(tmpdir(), "hamalog-config-"));
    try {
      writeFileSync(join(dir, "bomb.yaml"), text);
      const r = await hamalog(["tag", "--config", join(dir, "bomb.yaml"), "--sha", "a".repeat(40), "--branch", "x"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("type errors are type errors", () => {
  it.each([
    [
      'deploy:\n  port: "22"\n',
      /^deploy\/port: must be a number, got a string \("22"\) — write it without quotes \(in p\.yaml or --port\)/,
    ],
    ["deploy:\n  health:\n    timeout: [1]\n", /^deploy\/health\/timeout: must be a number, got a list/],
    ["deploy: 5\n", /^deploy: must be a mapping, got a number \(5\)/],
    ["deploy:\n  host: 12\n", /^deploy\/host: must be a string, got a number \(12\)/],
  ])("%j", (text, re) => {
    expect(timedError(() => parseConfig(text, "p.yaml")).error.message).toMatch(re);
  });

  it("an explicit null is a type error, not `required`", () => {
    expect(timedError(() => parseConfig("image:\n  registry: null\n", "p.yaml")).error.message).toMatch(
      /image\/registry: must be a string, got null/,
    );
  });
});

describe("host-key pins", () => {
  const bare = `SHA256:${"a1B2+/".repeat(7)}x`;
  it("keeps a pin without the base64 `=` padding, so a padded copy matches what the server presents", () => {
    expect(bare).toHaveLength(50);
    expect(parseConfig(`deploy:\n  hostKey: "${bare}="\n`).deploy.hostKey).toBe(bare);
    expect(parseConfig("", "p", { "deploy/hostKey": bare }).deploy.hostKey).toBe(bare);
  });
});
