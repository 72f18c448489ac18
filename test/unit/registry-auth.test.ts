// WWW-Authenticate parsing, token responses and the per-scope token cache (clock passed in).
import { describe, expect, it } from "vitest";
import {
  TokenCache,
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  principalKey,
  pullScope,
  tokenUrl,
} from "../../ci/core/registry/auth.js";

describe("parseWwwAuthenticate", () => {
  it.each([
    [
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:daemin-kim/hamalog-backend:pull"',
      [
        {
          scheme: "bearer",
          params: {
            realm: "https://ghcr.io/token",
            service: "ghcr.io",
            scope: "repository:daemin-kim/hamalog-backend:pull",
          },
        },
      ],
    ],
    ['Basic realm="hamalog-test"', [{ scheme: "basic", params: { realm: "hamalog-test" } }]],
    [
      'Bearer realm="https://auth.docker.io/token", service="registry.docker.io", error="insufficient_scope"',
      [
        {
          scheme: "bearer",
          params: { realm: "https://auth.docker.io/token", service: "registry.docker.io", error: "insufficient_scope" },
        },
      ],
    ],
    [
      "BEARER Realm=https://x/token, Service=x",
      [{ scheme: "bearer", params: { realm: "https://x/token", service: "x" } }],
    ],
    [
      'Basic realm="a, b", Bearer realm="https://t/token",scope="repository:a/b:pull,push"',
      [
        { scheme: "basic", params: { realm: "a, b" } },
        { scheme: "bearer", params: { realm: "https://t/token", scope: "repository:a/b:pull,push" } },
      ],
    ],
    ['Bearer realm="with \\"quote\\""', [{ scheme: "bearer", params: { realm: 'with "quote"' } }]],
    ["", []],
    [null, []],
  ])("%j", (header, expected) => {
    expect(parseWwwAuthenticate(header)).toEqual(expected);
  });
});

describe("token requests and answers", () => {
  it("builds the realm URL with service and scope", () => {
    const url = tokenUrl(
      { scheme: "bearer", params: { realm: "https://ghcr.io/token", service: "ghcr.io" } },
      pullScope("daemin-kim/hamalog-backend"),
    );
    expect(url.toString()).toBe(
      "https://ghcr.io/token?service=ghcr.io&scope=repository%3Adaemin-kim%2Fhamalog-backend%3Apull",
    );
    expect(() => tokenUrl({ scheme: "bearer", params: {} }, undefined)).toThrow(/no realm/);
  });

  it.each([
    [
      { token: "t", expires_in: 300 },
      { token: "t", expiresIn: 300 },
    ],
    [{ access_token: "a" }, { token: "a", expiresIn: 60 }], // the spec's default lifetime
    [
      { token: "t", access_token: "a", expires_in: 0 },
      { token: "t", expiresIn: 60 },
    ],
    [
      { token: "t", issued_at: "2026-01-01T00:00:00Z" },
      { token: "t", expiresIn: 60, issuedAt: Date.parse("2026-01-01T00:00:00Z") },
    ],
  ])("parses %j", (json, expected) => {
    expect(parseTokenResponse(json)).toEqual(expected);
  });

  it("rejects an answer without a token, without quoting the body", () => {
    expect(() => parseTokenResponse({ details: "nope" })).toThrow("the token service answered without a token");
  });

  it("keys principals without the password", () => {
    const k = principalKey({ username: "ci", password: "hunter2-secret" });
    expect(k).toMatch(/^ci#[0-9a-f]{16}$/);
    expect(k).not.toContain("hunter2");
    expect(principalKey({ username: "ci", password: "other" })).not.toBe(k);
    expect(principalKey(undefined)).toBe("anonymous");
    expect(basicAuthorization("u", "p")).toBe(`Basic ${Buffer.from("u:p").toString("base64")}`);
  });
});

describe("TokenCache", () => {
  it("serves a token per registry + principal + scope until shortly before it expires", () => {
    const cache = new TokenCache(5_000);
    const t0 = 1_000_000;
    cache.put("ghcr.io", "anonymous", "repository:a/b:pull", { token: "T", expiresIn: 300 }, t0);
    expect(cache.get("ghcr.io", "anonymous", "repository:a/b:pull", t0 + 1)).toBe("T");
    expect(cache.get("ghcr.io", "anonymous", "repository:a/c:pull", t0 + 1)).toBeUndefined();
    expect(cache.get("ghcr.io", "ci#1", "repository:a/b:pull", t0 + 1)).toBeUndefined();
    expect(cache.get("other.io", "anonymous", "repository:a/b:pull", t0 + 1)).toBeUndefined();
    expect(cache.get("ghcr.io", "anonymous", "repository:a/b:pull", t0 + 294_999)).toBe("T");
    expect(cache.get("ghcr.io", "anonymous", "repository:a/b:pull", t0 + 295_000)).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it("counts lifetime from issued_at when it is in the past, and keeps short tokens mostly usable", () => {
    const cache = new TokenCache(5_000);
    cache.put("r", "p", "s", { token: "T", expiresIn: 60, issuedAt: 0 }, 30_000);
    expect(cache.get("r", "p", "s", 50_000)).toBe("T");
    expect(cache.get("r", "p", "s", 55_000)).toBeUndefined();
    cache.put("r", "p", "s", { token: "U", expiresIn: 2 }, 0); // margin is at most a tenth of the lifetime
    expect(cache.get("r", "p", "s", 1_700)).toBe("U");
    expect(cache.get("r", "p", "s", 1_800)).toBeUndefined();
  });
});
