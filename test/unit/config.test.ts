import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { parseConfig, requireDeploy, requireImage } from "../../ci/src/config.js";
import { ConfigError } from "../../ci/src/errors.js";
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

  it("lets flags override the file (flag > file > default)", () => {
    const cfg = parseConfig(hamalogExample, "pipeline.yaml", {
      host: "127.0.0.1",
      port: "2222",
      image: "127.0.0.1:5001/acme/app",
    });
    expect(cfg.deploy.host).toBe("127.0.0.1");
    expect(cfg.deploy.port).toBe(2222);
    expect(requireImage(cfg)).toEqual({ registry: "127.0.0.1:5001", repository: "acme/app" });
    expect(parseConfig("").image.registry).toBe("ghcr.io");
  });

  it.each([
    ["host", "example.com; rm -rf /", /deploy\/host: must be a host name/],
    ["user", "root$(id)", /deploy\/user: must be a plain user name/],
    ["directory", "/opt/../etc", /deploy\/directory: must not contain `\.\.`/],
    ["directory", "/opt/ham alog", /deploy\/directory: must be an absolute path/],
    ["service", "app\nrm", /deploy\/service: must be a compose service name/],
    ["health-url", "http://x/'; id", /deploy\/health\/url: must be an http:\/\/ URL/],
    ["health-url", "https://127.0.0.1/health", /deploy\/health\/url: must be an http:\/\/ URL as seen from the host/],
    ["health-interval", "fast", /--health-interval: `fast` is not a number/],
    ["port", "22x", /--port: `22x` is not a whole number/],
    ["fallback", "sometimes", /deploy\/fallback/],
  ])("rejects hostile or malformed --%s %j", (flag, value, re) => {
    expect(errorOf(() => parseConfig("", "pipeline.yaml", { [flag]: value })).message).toMatch(re);
  });
});

describe("--set FLAG=VALUE (the Dagger door's override for every field)", () => {
  it("overrides any field by its CLI flag name; named arguments win over --set", async () => {
    const { mergeOverrides, parseSetPairs } = await import("../../ci/src/config.js");
    const set = parseSetPairs([
      "health-url=http://127.0.0.1:8080/actuator/health",
      "wait-timeout=300",
      "build-arg=A=1",
      "build-arg=B=2",
      "host=a.example",
    ]);
    const cfg = parseConfig(
      hamalogExample,
      "pipeline.yaml",
      mergeOverrides(set, { host: "b.example", port: undefined }),
    );
    expect(cfg.deploy.health.url).toBe("http://127.0.0.1:8080/actuator/health");
    expect(cfg.deploy.waitTimeout).toBe(300);
    expect(cfg.build.buildArgs).toEqual({ A: "1", B: "2" });
    expect(cfg.deploy.host).toBe("b.example");
    expect(cfg.deploy.port).toBe(22);
  });
  it("rejects an unknown flag with a did-you-mean and a pair without =", async () => {
    const { parseSetPairs } = await import("../../ci/src/config.js");
    expect(errorOf(() => parseSetPairs(["helth-url=http://x"])).message).toMatch(
      /^--set: `helth-url=http:\/\/x` must be FLAG=VALUE .*did you mean `health-url`/,
    );
    expect(errorOf(() => parseSetPairs(["host"])).message).toMatch(/must be FLAG=VALUE/);
  });
});
