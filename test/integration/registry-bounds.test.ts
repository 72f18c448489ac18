// A registry that misbehaves on purpose (its own process on 127.0.0.1, stopped by pid): endless and huge
// answers are cut at their caps within seconds, forged text never reaches the terminal raw, weak digests are
// not "verified", and a caller's cancel ends a verification at once — through the core and the real CLI.
import { afterEach, describe, expect, it } from "vitest";
import { RegistryError, verifyManifest } from "../../ci/core/registry/verify.js";
import { hamalog } from "../helpers/cli.js";
import { startHostileRegistry, type HostileMode, type HostileRegistry } from "./helpers/hostile-registry.js";
import { verifyManifestArgv } from "./helpers/registry.js";

const UNPRINTABLE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

let server: HostileRegistry | undefined;
afterEach(async () => {
  await server?.stop();
  server = undefined;
});

async function verifyAgainst(mode: HostileMode, reference = "v1", signal?: AbortSignal) {
  server = await startHostileRegistry(mode);
  const started = Date.now();
  try {
    const result = await verifyManifest(
      { registry: server.host, repository: "acme/app", reference },
      signal ? { signal } : {},
    );
    return { result, ms: Date.now() - started };
  } catch (e) {
    if (!(e instanceof RegistryError)) throw e;
    return { error: e, ms: Date.now() - started };
  }
}

describe("unbounded registry answers", () => {
  it("an endless manifest is cut at 4 MiB within seconds, with bounded memory", async () => {
    const rssBefore = process.memoryUsage().rss;
    const { error, ms } = await verifyAgainst("endless-manifest");
    expect(ms).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
    expect(error?.diagnosis.kind).toBe("server");
    expect(error?.message).toMatch(/sent a manifest .* larger than 4 MiB; reading stopped there/);
    expect(error?.message).toMatch(/caps manifests at 4 MiB/);
  });

  it("an index over 4 MiB is refused as too large", async () => {
    const { error, ms } = await verifyAgainst("huge-index");
    expect(ms).toBeLessThan(5_000);
    expect(error?.message).toMatch(/larger than 4 MiB/);
  });

  it("an index of 60,000 distinct platforms is read in linear time, and the platforms reported are bounded", async () => {
    const { result, ms } = await verifyAgainst("index");
    expect(ms).toBeLessThan(2_000);
    expect(result?.platforms.length).toBe(256);
    expect(result?.platforms.slice(0, 2)).toEqual(["linux/a0", "linux/a1"]);
  });

  it("an endless tag list (while diagnosing a missing tag) is cut, and the missing tag is still explained", async () => {
    const { error, ms } = await verifyAgainst("endless-tags");
    expect(ms).toBeLessThan(5_000);
    expect(error?.diagnosis.kind).toBe("manifest-unknown");
    expect(error?.message).toMatch(/Could not list the repository's tags: .*tag list is larger than/);
  });
});

describe("registry text is sanitised and capped", () => {
  it("escape sequences, carriage returns, forged lines and bidi overrides in error codes never get through", async () => {
    const { error } = await verifyAgainst("forged-errors");
    expect(error?.diagnosis.kind).toBe("denied");
    expect(error?.message).not.toMatch(UNPRINTABLE);
    expect(error?.message).not.toMatch(/^verified/m);
    expect(error?.message.length).toBeLessThan(1_500);
    for (const code of error?.diagnosis.codes ?? []) expect(code.length).toBeLessThanOrEqual(64);
  });

  it("a tag with escape sequences is not listed; real tags still are", async () => {
    const { error } = await verifyAgainst("forged-tags", "v1.0.2");
    expect(error?.message).not.toMatch(UNPRINTABLE);
    expect(error?.diagnosis.tags).toEqual(["v1.0.1"]);
  });

  it("the CLI prints none of the forged text either", async () => {
    server = await startHostileRegistry("forged-errors");
    const r = await hamalog(verifyManifestArgv(server.host, "acme/app", "--tag", "v1"));
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).not.toMatch(UNPRINTABLE);
    expect(r.stderr).toMatch(/denied/);
  });
});

describe("only sha256/sha512 lower-case digests verify", () => {
  it.each(["md5", "sha1", "upper"] as const)("a %s Docker-Content-Digest is refused, not verified", async (mode) => {
    const { result, error } = await verifyAgainst(mode);
    expect(result).toBeUndefined();
    expect(error?.diagnosis.kind).toBe("digest-mismatch");
    expect(error?.message).toMatch(/is not a sha256 or sha512 digest in lower-case hex/);
  });
});

describe("cancellation", () => {
  it("an abort signal ends a verification waiting on a silent registry at once, not at the 30 s budget", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const { error, ms } = await verifyAgainst("hang", "v1", controller.signal);
    expect(ms).toBeLessThan(2_000);
    expect(error?.diagnosis.kind).toBe("network");
    expect(error?.message).toMatch(/cancelled/);
  });
});
