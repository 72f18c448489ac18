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
    const cfg = parseConfig(hamalogExample, "pipeline.yaml", { host: "127.0.0.1", port: "2222", image: "127.0.0.1:5001/acme/app" });
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
    ["health-url", "http://x/'; id", /deploy\/health\/url: must be an http\(s\) URL/],
    ["port", "22x", /--port: `22x` is not a whole number/],
    ["fallback", "sometimes", /deploy\/fallback/],
  ])("rejects hostile or malformed --%s %j", (flag, value, re) => {
    expect(errorOf(() => parseConfig("", "pipeline.yaml", { [flag]: value })).message).toMatch(re);
  });
});
