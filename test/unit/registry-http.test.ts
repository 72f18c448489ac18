// Pure parts of the HTTP layer: Retry-After, backoff, which statuses retry, Link pagination, network error names.
import { describe, expect, it } from "vitest";
import {
  BodyTooLarge,
  backoffMs,
  classifyNetworkError,
  isRetryable,
  nextLink,
  readBody,
  readErrorBody,
  retryAfterMs,
} from "../../ci/core/registry/http.js";
import { registryBaseUrl } from "../../ci/core/registry/authorized-request.js";
import { parseErrors } from "../../ci/core/registry/http-error.js";

describe("retry policy", () => {
  it.each([
    [429, true],
    [500, true],
    [502, true],
    [503, true],
    [599, true],
    [400, false],
    [401, false],
    [403, false],
    [404, false],
    [200, false],
  ])("status %i retryable: %s", (status, expected) => {
    expect(isRetryable(status)).toBe(expected);
  });

  it("Retry-After: seconds or an HTTP date, relative to the given clock", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(retryAfterMs("3", now)).toBe(3_000);
    expect(retryAfterMs("0", now)).toBe(0);
    expect(retryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5_000);
    expect(retryAfterMs("Wed, 31 Dec 2025 00:00:05 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });

  it("backs off exponentially", () => {
    expect([0, 1, 2, 3].map((a) => backoffMs(a, 250))).toEqual([250, 500, 1000, 2000]);
  });
});

describe("Link pagination", () => {
  const base = new URL("https://ghcr.io/v2/a/b/tags/list?n=100");
  it.each([
    ['</v2/a/b/tags/list?n=100&last=v9>; rel="next"', "https://ghcr.io/v2/a/b/tags/list?n=100&last=v9"],
    ["<https://ghcr.io/v2/a/b/tags/list?last=x&n=2>; rel=next", "https://ghcr.io/v2/a/b/tags/list?last=x&n=2"],
    ['</prev>; rel="prev", </v2/a/b/tags/list?last=z>; rel="next"', "https://ghcr.io/v2/a/b/tags/list?last=z"],
    ['</v2/a/b/tags/list?last=z>; rel="prev"', undefined],
    [null, undefined],
  ])("%j", (header, expected) => {
    expect(nextLink(header, base)?.toString()).toBe(expected);
  });
});

describe("network failures get a reason", () => {
  const fetchFailed = (code: string) =>
    Object.assign(new TypeError("fetch failed"), { cause: Object.assign(new Error(code), { code }) });
  it.each([
    ["ECONNREFUSED", "refused", /connection refused .* nothing is listening on ghcr.io:443/],
    ["ENOTFOUND", "dns", /DNS lookup of ghcr.io failed \(ENOTFOUND\)/],
    ["EAI_AGAIN", "dns", /DNS lookup/],
    ["CERT_HAS_EXPIRED", "tls", /TLS handshake failed \(CERT_HAS_EXPIRED\)/],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "tls", /TLS/],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "tls", /TLS/],
    ["ECONNRESET", "reset", /closed mid-request/],
    ["UND_ERR_CONNECT_TIMEOUT", "timeout", /timed out/],
  ])("%s → %s", (code, reason, message) => {
    const f = classifyNetworkError("ghcr.io:443", fetchFailed(code));
    expect(f.reason).toBe(reason);
    expect(f.detail).toMatch(message);
  });

  it("an aborted deadline is a timeout", () => {
    const f = classifyNetworkError(
      "ghcr.io",
      new DOMException("The operation was aborted due to timeout", "TimeoutError"),
      30_000,
    );
    expect(f.reason).toBe("timeout");
    expect(f.detail).toMatch(/30000 ms/);
  });
});

describe("registry addressing and error bodies", () => {
  it.each([
    ["ghcr.io", "https://ghcr.io/"],
    ["127.0.0.1:5001", "http://127.0.0.1:5001/"],
    ["localhost:5000", "http://localhost:5000/"],
    ["[::1]:5000", "http://[::1]:5000/"],
    ["registry.example.com:5000", "https://registry.example.com:5000/"],
    ["docker.io", "https://registry-1.docker.io/"],
  ])("%s → %s", (registry, url) => {
    expect(registryBaseUrl(registry).toString()).toBe(url);
  });

  it("parses registry error bodies and ignores anything else", () => {
    expect(
      parseErrors(
        Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}'),
      ),
    ).toEqual([{ code: "MANIFEST_UNKNOWN", message: "manifest unknown", detail: { Tag: "x" } }]);
    expect(parseErrors(Buffer.from("<html>502</html>"))).toEqual([]);
    expect(parseErrors(Buffer.from('{"details":"x"}'))).toEqual([]);
  });

  it("makes a registry's codes and messages one printable, capped line", () => {
    const forged = "\u001b[2J\r\nverified: ok\u202e\u0007";
    const [e] = parseErrors(
      Buffer.from(JSON.stringify({ errors: [{ code: `DENIED${forged}`, message: "m".repeat(900) }] })),
    );
    expect(e!.code).toBe("DENIED [2J verified: ok");
    expect(e!.message).toHaveLength(300);
    expect(e!.message.endsWith("…")).toBe(true);
    const many = { errors: Array.from({ length: 50 }, () => ({ code: "X".repeat(500) })) };
    const parsed = parseErrors(Buffer.from(JSON.stringify(many)));
    expect(parsed).toHaveLength(5);
    expect(parsed[0]!.code).toHaveLength(64);
  });
});

describe("readBody", () => {
  const endless = () =>
    new Response(
      new ReadableStream({
        pull(c) {
          c.enqueue(new Uint8Array(64 * 1024));
        },
      }),
    );
  it("stops an endless body at its limit", async () => {
    await expect(readBody(endless(), "r.example", 1024 * 1024, "manifest")).rejects.toThrow(
      "r.example: the manifest is larger than 1048576 bytes",
    );
  });
  it("refuses a declared Content-Length over the limit without reading", async () => {
    const res = new Response("x".repeat(10), { headers: { "content-length": "9999999" } });
    await expect(readBody(res, "r.example", 100)).rejects.toBeInstanceOf(BodyTooLarge);
  });
  it("truncates an error body rather than failing", async () => {
    expect((await readErrorBody(endless(), "r.example")).length).toBe(0);
    expect((await readErrorBody(new Response('{"errors":[]}'), "r.example")).toString()).toBe('{"errors":[]}');
  });
});
