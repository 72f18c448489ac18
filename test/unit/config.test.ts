import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfig, requireDeploy, requireImage, schemaPaths } from "../../ci/core/config.js";
import { FIELDS, mergeOverrides, parseSetPairs } from "../../ci/core/overrides.js";
import { ConfigError, InternalError } from "../../ci/core/errors.js";
import { ROOT } from "../helpers/cli.js";

const hamalogExample = readFileSync(`${ROOT}/pipeline.yaml`, "utf8");

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("pipeline config", () => {
  it("Hamalog's own pipeline.yaml names ghcr.io/daemin-kim/hamalog-backend and hamalog-app", () => {
    const cfg = parseConfig(hamalogExample);
    expect(requireImage(cfg)).toEqual({ registry: "ghcr.io", repository: "daemin-kim/hamalog-backend" });
    const d = requireDeploy(cfg);
    expect(d.service).toBe("hamalog-app");
    expect(d.health.url).toMatch(/\/actuator\/health$/);
    expect(d.fallback).toBe("latest");
  });

  it("lowercases a GITHUB_REPOSITORY-style repository", () => {
    const cfg = parseConfig("image:\n  repository: Daemin-Kim/Hamalog-Backend\n");
    expect(cfg.image.repository).toBe("daemin-kim/hamalog-backend");
  });

  it("has no default repository: missing is an error naming the key and the flags", () => {
    const e = errorOf(() => requireImage(parseConfig("")));
    expect(e.message).toMatch(/^image\/repository: required \(set it in pipeline.yaml or pass --repository/);
    expect(e.message).not.toMatch(/ghcr\.io\/hamalog\b(?!-)/);
  });

  it("names every missing deploy field with its flag", () => {
    const e = errorOf(() => requireDeploy(parseConfig("image:\n  repository: a/b\n")));
    expect(e.message).toContain("deploy/host: required (set it in pipeline.yaml or pass --host)");
    expect(e.message).toContain("deploy/user: required (set it in pipeline.yaml or pass --user)");
    expect(e.message).toContain("deploy/service: required");
  });

  it("rejects unknown keys with a did-you-mean", () => {
    const e = errorOf(() => parseConfig("deploy:\n  hots: example.com\n"));
    expect(e.message).toMatch(/deploy\/hots: unknown key \(did you mean `host`\?\)/);
  });

  it("gives line and column for YAML syntax errors", () => {
    const e = errorOf(() => parseConfig("image:\n  repository: [a\n", "my.yaml"));
    expect(e.message).toMatch(/^my\.yaml:\d+:\d+: YAML syntax error/);
  });

  it("lets overrides (keyed by config path) win over the file, and the file over defaults", () => {
    const cfg = parseConfig(hamalogExample, "pipeline.yaml", {
      "deploy/host": "127.0.0.1",
      "deploy/port": "2222",
      image: "127.0.0.1:5001/acme/app",
    });
    expect(cfg.deploy.host).toBe("127.0.0.1");
    expect(cfg.deploy.port).toBe(2222);
    expect(requireImage(cfg)).toEqual({ registry: "127.0.0.1:5001", repository: "acme/app" });
    expect(parseConfig("").image.registry).toBe("ghcr.io");
  });

  it("fills every default once, also under a section the file leaves out", () => {
    expect(parseConfig("")).toEqual({
      image: { registry: "ghcr.io" },
      defaultBranch: "main",
      build: { context: ".", dockerfile: "Dockerfile", buildArgs: {}, platforms: [] },
      deploy: {
        port: 22,
        health: { timeout: 120, interval: 2, expectStatus: 200 },
        waitTimeout: 180,
        pullStallTimeout: 120,
        fallback: "none",
        keepImages: 5,
        strategy: "recreate",
        proxy: { image: "caddy:2", drainSeconds: 10, tls: "acme", warmSeconds: 300 },
        swarm: { replicas: 2, parallelism: 1, monitorSeconds: 10, publish: 80, placement: {} },
        leaseSeconds: 30,
        env: {},
        secrets: [],
        files: [],
      },
    });
    expect(parseConfig("deploy:\n  health:\n    url: http://127.0.0.1/h\n").deploy.health).toEqual({
      url: "http://127.0.0.1/h",
      timeout: 120,
      interval: 2,
      expectStatus: 200,
    });
  });

  it("blue-green needs a health URL (its path is probed through the proxy), named with its flag; the public port is optional", () => {
    const base =
      "image: {repository: a/b}\ndeploy: {host: h, user: u, directory: /srv/x, service: app, composeFile: c.yaml";
    const err = (() => {
      try {
        requireDeploy(parseConfig(`${base}, strategy: blue-green}\n`));
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })();
    expect(err).not.toMatch(/deploy\/proxy\/publish/);
    expect(err).toMatch(/deploy\/health\/url: required with deploy\/strategy blue-green .*--health-url/);
    const ok = requireDeploy(
      parseConfig(
        `${base}, strategy: blue-green, proxy: {publish: "127.0.0.1:8080:80"}, health: {url: "http://127.0.0.1:8080/h"}}\n`,
      ),
    );
    expect(ok.proxy).toEqual({
      image: "caddy:2",
      publish: "127.0.0.1:8080:80",
      drainSeconds: 10,
      tls: "acme",
      warmSeconds: 300,
    });
    expect(() => parseConfig("deploy: {strategy: rolling}\n")).toThrow(/deploy\/strategy/);
    expect(() => parseConfig('deploy: {proxy: {publish: "8080"}}\n')).toThrow(
      /deploy\/proxy\/publish: must be \[IP:\]HOST_PORT/,
    );
  });

  it.each([
    ["deploy/host", "example.com; rm -rf /", /deploy\/host: must be a host name/],
    ["deploy/user", "root$(id)", /deploy\/user: must be a plain user name/],
    ["deploy/directory", "/opt/../etc", /deploy\/directory: must not contain `\.\.`/],
    ["deploy/directory", "/opt/ham alog", /deploy\/directory: must be an absolute path/],
    ["deploy/service", "app\nrm", /deploy\/service: must be a compose service name/],
    ["deploy/health/url", "http://x/'; id", /deploy\/health\/url: must be an http:\/\/ URL/],
    [
      "deploy/health/url",
      "https://127.0.0.1/health",
      /deploy\/health\/url: must be an http:\/\/ URL as seen from the host/,
    ],
    [
      "deploy/health/interval",
      "fast",
      /^deploy\/health\/interval: `fast` is not a number \(in pipeline.yaml or --health-interval\)$/,
    ],
    ["deploy/port", "22x", /^deploy\/port: `22x` is not a whole number \(in pipeline.yaml or --port\)$/],
    [
      "build/buildArgs",
      ["NOEQUALS"],
      /^build\/buildArgs: `NOEQUALS` must be KEY=VALUE \(in pipeline.yaml or --build-arg\)$/,
    ],
    ["deploy/fallback", "sometimes", /deploy\/fallback/],
  ])("rejects hostile or malformed %s %j", (path, value, re) => {
    expect(errorOf(() => parseConfig("", "pipeline.yaml", { [path]: value })).message).toMatch(re);
  });
});

describe("--set PATH=VALUE (the Dagger door's override for every field)", () => {
  it("overrides any field by its config path; named arguments win over --set", () => {
    const set = parseSetPairs([
      "deploy/health/url=http://127.0.0.1:8080/actuator/health",
      "deploy/waitTimeout=300",
      "build/buildArgs=A=1",
      "build/buildArgs=B=2",
      "deploy/host=a.example",
      "image=127.0.0.1:5001/acme/app",
    ]);
    const cfg = parseConfig(
      hamalogExample,
      "pipeline.yaml",
      mergeOverrides(set, { "deploy/host": "b.example", "deploy/port": undefined }),
    );
    expect(cfg.deploy.health.url).toBe("http://127.0.0.1:8080/actuator/health");
    expect(cfg.deploy.waitTimeout).toBe(300);
    expect(cfg.build.buildArgs).toEqual({ A: "1", B: "2" });
    expect(cfg.deploy.host).toBe("b.example");
    expect(cfg.deploy.port).toBe(22);
    expect(requireImage(cfg)).toEqual({ registry: "127.0.0.1:5001", repository: "acme/app" });
  });

  it("rejects an unknown path with a did-you-mean, and a pair without =", () => {
    expect(errorOf(() => parseSetPairs(["deploy/helth/url=http://x"])).message).toMatch(
      /^--set: `deploy\/helth\/url=http:\/\/x` must be PATH=VALUE .*did you mean `deploy\/health\/url`/,
    );
    expect(errorOf(() => parseSetPairs(["deploy/host"])).message).toMatch(/must be PATH=VALUE/);
  });

  it("refuses the old CLI-flag keys, naming the path to use", () => {
    expect(errorOf(() => parseSetPairs(["health-url=http://x"])).message).toMatch(
      /^--set: `health-url=http:\/\/x` must be PATH=VALUE with a config path — keys are config paths now: use `deploy\/health\/url=…`/,
    );
  });

  it("refuses a field only pipeline.yaml can hold", () => {
    expect(errorOf(() => parseSetPairs(["deploy/services=x"])).message).toMatch(
      /^--set: `deploy\/services=x` must be PATH=VALUE/,
    );
  });
});

describe("the field table (overrides.ts FIELDS)", () => {
  it("an override key no door can produce is a bug, reported as one", () => {
    expect(() => parseConfig("", "pipeline.yaml", { "deploy/nope": "x" })).toThrow(InternalError);
  });

  it("lists exactly the schema's fields, each flag once", () => {
    expect(FIELDS.map((f) => f.path).sort()).toEqual(schemaPaths().sort());
    const flags = FIELDS.flatMap((f) => (f.flag ? [f.flag] : []));
    expect(new Set(flags).size).toBe(flags.length);
  });
});
