// verify-manifest against a REAL distribution registry (no auth): the seed's incident reproduced and
// diagnosed, digests equal to what the registry reports, multi-platform indexes, tag pagination, retries,
// tampering, timeouts and a registry that goes away — through the core and through the real CLI.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Directory, Secret } from "@dagger.io/dagger";
import { ConfigError } from "../../ci/core/errors.js";
import { Hamalog } from "../../ci/src/index.js";
import { RegistryClient, RegistryError, verifyManifest, type VerifyRequest } from "../../ci/core/registry/verify.js";
import { hamalog } from "../helpers/cli.js";
import { buildAppImage, docker, pushImage } from "./helpers/images.js";
import { getManifestRaw, putManifest, startRegistry, verifyManifestArgv, type Registry } from "./helpers/registry.js";
import { startRegistryProxy } from "./helpers/registry-proxy.js";
import { parseSha } from "../../ci/core/tags.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const LOCAL_A = "hamalog-verify-test/app:a";
const LOCAL_B = "hamalog-verify-test/app:b";

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RegistryError) return e;
    throw e;
  }
  throw new Error("expected verifyManifest to fail");
}

describe("verify-manifest against a real registry (no auth)", () => {
  let registry: Registry;
  let manifestA: { body: Buffer; digest: string };
  let manifestB: { body: Buffer; digest: string };
  let pushedDigest: string;
  const req = (repository: string, reference: string, extra: Partial<VerifyRequest> = {}): VerifyRequest => ({
    registry: registry.host,
    repository,
    reference,
    ...extra,
  });
  /** Give an existing manifest another tag in another repository path of the same registry (by PUT). */
  const tag = (repository: string, t: string, m = manifestA) =>
    putManifest(registry.url, repository, t, m.body, DOCKER_MANIFEST);

  beforeAll(async () => {
    registry = await startRegistry();
    buildAppImage(LOCAL_A, { version: "a" });
    buildAppImage(LOCAL_B, { version: "b" });
    // One real `docker push` per source repository; other tags are PUTs of the same manifest bytes.
    pushedDigest = pushImage(LOCAL_A, `${registry.host}/daemin-kim/hamalog-backend:${SHA}`);
    pushImage(LOCAL_B, `${registry.host}/daemin-kim/hamalog-backend:b`);
    manifestA = await getManifestRaw(registry.url, "daemin-kim/hamalog-backend", SHA);
    manifestB = await getManifestRaw(registry.url, "daemin-kim/hamalog-backend", "b");
    for (const repo of ["acme/seed-branch", "acme/seed-short", "acme/many", "acme/multi"]) {
      pushImage(LOCAL_A, `${registry.host}/${repo}:base`);
      pushImage(LOCAL_B, `${registry.host}/${repo}:base-b`);
    }
    await tag("acme/seed-branch", `main-${SHA}`);
    await tag("acme/seed-short", `sha-${SHA.slice(0, 7)}`);
    for (let i = 0; i < 25; i++) await tag("acme/many", `v1.0.${i}`);
  });

  afterAll(async () => {
    await registry?.stop();
    for (const ref of [LOCAL_A, LOCAL_B]) {
      try {
        docker(["rmi", "-f", ref]);
      } catch {
        /* already gone */
      }
    }
    for (const line of docker(["images", "--format", "{{.Repository}}:{{.Tag}}"]).split("\n")) {
      if (registry && line.startsWith(`${registry.host}/`)) docker(["rmi", line]);
    }
  });

  it("passes for the pushed sha tag; the digest equals what docker push and the registry report; 1 request", async () => {
    const r = await verifyManifest(req("daemin-kim/hamalog-backend", SHA, { wantedSha: SHA }));
    expect(r.digest).toBe(pushedDigest);
    expect(r.digest).toBe(manifestA.digest);
    expect(r.mediaType).toBe(DOCKER_MANIFEST);
    expect(r.reference).toBe(`${registry.host}/daemin-kim/hamalog-backend:${SHA}@${pushedDigest}`);
    expect(r.platforms).toEqual([]);
    expect(r.requests).toBe(1);
  });

  it("seed reproduction: only main-<sha> pushed → names main-<sha> and the branch-prefix cause", async () => {
    const e = await failure(verifyManifest(req("acme/seed-branch", SHA, { wantedSha: SHA })));
    const d = e.diagnosis;
    expect(d.kind).toBe("manifest-unknown");
    expect(d.nearMisses?.[0]?.tag).toBe(`main-${SHA}`);
    expect(d.nearMisses?.[0]?.why).toMatch(/branch-prefixed.*docker\/metadata-action/);
    expect(d.tags?.[0]).toBe(`main-${SHA}`);
    expect(d.tags).toEqual(expect.arrayContaining(["base", "base-b"]));
    expect(e.message).toMatch(
      new RegExp(`tag ${SHA} not found in ${registry.host}/acme/seed-branch \\(MANIFEST_UNKNOWN\\)`),
    );
    expect(e.message).toMatch(/push with this module's `tag`/);
    expect(e.exitCode).toBe(1);
  });

  it("seed reproduction: only sha-<7> pushed → names sha-453a654 and metadata-action's type=sha", async () => {
    const d = (await failure(verifyManifest(req("acme/seed-short", SHA, { wantedSha: SHA })))).diagnosis;
    expect(d.kind).toBe("manifest-unknown");
    expect(d.nearMisses).toEqual([{ tag: "sha-453a654", why: expect.stringMatching(/prefix 453a654.*type=sha/) }]);
  });

  it("a short sha asked for finds the full-sha tag that exists", async () => {
    const d = (await failure(verifyManifest(req("daemin-kim/hamalog-backend", SHA.slice(0, 7))))).diagnosis;
    expect(d.kind).toBe("manifest-unknown");
    expect(d.nearMisses?.[0]?.tag).toBe(SHA);
  });

  it("an unknown repository is name-unknown, naming exactly what was asked for", async () => {
    const d = (await failure(verifyManifest(req("hamalog", SHA)))).diagnosis;
    expect(d.kind).toBe("name-unknown");
    expect(d.message).toContain(`\`${registry.host}/hamalog\``);
    expect(d.message).toMatch(/no OWNER\/ part/);
  });

  it("a malformed request is a ConfigError (exit 2) before any request", async () => {
    await expect(verifyManifest(req("acme/x", "bad tag!"))).rejects.toBeInstanceOf(ConfigError);
    await expect(verifyManifest(req("acme/x", "v1", { platform: "amd64" }))).rejects.toThrow(
      /platform: .* must look like OS\/ARCH/,
    );
  });

  describe("platforms", () => {
    let listDigest: string;
    let ociDigest: string;
    beforeAll(async () => {
      // The second image is busybox/amd64 too; the index *declares* it arm64/v8, which is all a client reads.
      const entries = [
        { m: manifestA, platform: { os: "linux", architecture: "amd64" } },
        { m: manifestB, platform: { os: "linux", architecture: "arm64", variant: "v8" } },
        { m: manifestA, platform: { os: "unknown", architecture: "unknown" } }, // a buildx attestation entry
      ];
      const manifests = entries.map(({ m, platform }) => ({
        mediaType: DOCKER_MANIFEST,
        size: m.body.length,
        digest: m.digest,
        platform,
      }));
      listDigest = await putManifest(
        registry.url,
        "acme/multi",
        "multi",
        JSON.stringify({ schemaVersion: 2, mediaType: DOCKER_LIST, manifests }),
        DOCKER_LIST,
      );
      ociDigest = await putManifest(
        registry.url,
        "acme/multi",
        "multi-oci",
        JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }),
        OCI_INDEX,
      );
    });

    it("an index with the platform passes and lists runnable platforms (attestations left out)", async () => {
      const r = await verifyManifest(req("acme/multi", "multi", { platform: "linux/arm64" }));
      expect(r.digest).toBe(listDigest);
      expect(r.mediaType).toBe(DOCKER_LIST);
      expect(r.platforms).toEqual(["linux/amd64", "linux/arm64/v8"]);
      expect(r.requests).toBe(1);
      const oci = await verifyManifest(req("acme/multi", "multi-oci", { platform: "linux/amd64" }));
      expect(oci.mediaType).toBe(OCI_INDEX);
      expect(oci.digest).toBe(ociDigest);
    });

    it("an index without the platform fails listing what it has", async () => {
      const d = (await failure(verifyManifest(req("acme/multi", "multi-oci", { platform: "linux/s390x" })))).diagnosis;
      expect(d.kind).toBe("platform-missing");
      expect(d.platforms).toEqual(["linux/amd64", "linux/arm64/v8"]);
      expect(d.message).toMatch(
        /has no linux\/s390x image: its index lists linux\/amd64, linux\/arm64\/v8.*exec format error/s,
      );
    });

    it("by digest: passes and formats the reference without a tag", async () => {
      const r = await verifyManifest(req("acme/multi", listDigest));
      expect(r.reference).toBe(`${registry.host}/acme/multi@${listDigest}`);
    });

    it("a single image's platform is read from its config blob, only when asked (2 requests)", async () => {
      const r = await verifyManifest(req("daemin-kim/hamalog-backend", SHA, { platform: "linux/amd64" }));
      expect(r.platforms).toEqual(["linux/amd64"]);
      expect(r.requests).toBe(2);
      const d = (await failure(verifyManifest(req("daemin-kim/hamalog-backend", SHA, { platform: "linux/arm64" }))))
        .diagnosis;
      expect(d.kind).toBe("platform-missing");
      expect(d.message).toMatch(/it is a single linux\/amd64 image/);
    });
  });

  describe("through a proxy in front of the real registry", () => {
    it("follows tag-list pagination (n + Link) across pages", async () => {
      const proxy = await startRegistryProxy(registry.url, { tagsPageSize: 10 });
      try {
        const client = new RegistryClient();
        const listed = await client.listTags(
          { registry: proxy.host, repository: "acme/many" },
          undefined,
          client.newCall(),
          { pageSize: 10 },
        );
        expect(listed.pages).toBe(3);
        expect(listed.tags).toHaveLength(27);
        expect(new Set(listed.tags).size).toBe(27);
        const d = (
          await failure(verifyManifest({ registry: proxy.host, repository: "acme/many", reference: "v1.0.30" }))
        ).diagnosis;
        expect(d.kind).toBe("manifest-unknown");
        expect(d.message).toMatch(/Tags in .*acme\/many \(27, most similar first\): /);
        expect(
          proxy.seen.filter((s) => s.path.includes("/tags/list") && s.path.includes("last=")).length,
        ).toBeGreaterThanOrEqual(2);
      } finally {
        await proxy.stop();
      }
    });

    it("a registry answering 503 then 200 succeeds after retries (Retry-After honoured)", async () => {
      const proxy = await startRegistryProxy(registry.url, { failManifests: 2, retryAfterSeconds: 0 });
      try {
        const r = await verifyManifest({
          registry: proxy.host,
          repository: "daemin-kim/hamalog-backend",
          reference: SHA,
        });
        expect(r.digest).toBe(pushedDigest);
        expect(r.requests).toBe(3);
        expect(proxy.seen.map((s) => s.status)).toEqual([503, 503, 200]);
      } finally {
        await proxy.stop();
      }
    });

    it("a registry that keeps failing is a `server` diagnosis after bounded retries", async () => {
      const proxy = await startRegistryProxy(registry.url, { failManifests: 100, retryAfterSeconds: 0 });
      try {
        const e = await failure(
          verifyManifest({ registry: proxy.host, repository: "daemin-kim/hamalog-backend", reference: SHA }),
        );
        expect(e.diagnosis.kind).toBe("server");
        expect(e.diagnosis.status).toBe(503);
        expect(e.message).toMatch(/HTTP 503 UNAVAILABLE.*kept failing after retries/);
        expect(proxy.seen).toHaveLength(4); // 1 + 3 retries, then stop
      } finally {
        await proxy.stop();
      }
    });

    it("429 is rate-limited, with the registry's Retry-After", async () => {
      const proxy = await startRegistryProxy(registry.url, {
        failManifests: 100,
        failStatus: 429,
        retryAfterSeconds: 1,
      });
      try {
        const client = new RegistryClient({ retries: 1 });
        const started = Date.now();
        const e = await failure(
          verifyManifest(
            { registry: proxy.host, repository: "daemin-kim/hamalog-backend", reference: SHA },
            { client },
          ),
        );
        expect(Date.now() - started).toBeGreaterThanOrEqual(900); // it waited the Retry-After second once
        expect(e.diagnosis.kind).toBe("rate-limited");
        expect(e.message).toMatch(/HTTP 429 TOOMANYREQUESTS.*asks to wait 1 s/s);
        expect(proxy.seen).toHaveLength(2);
      } finally {
        await proxy.stop();
      }
    });

    it("bytes that do not hash to Docker-Content-Digest are a digest-mismatch", async () => {
      const proxy = await startRegistryProxy(registry.url, { tamper: true });
      try {
        const d = (
          await failure(
            verifyManifest({ registry: proxy.host, repository: "daemin-kim/hamalog-backend", reference: SHA }),
          )
        ).diagnosis;
        expect(d.kind).toBe("digest-mismatch");
        expect(d.message).toContain(`Docker-Content-Digest says ${pushedDigest}`);
      } finally {
        await proxy.stop();
      }
    });

    it("a registry slower than the total timeout is a network timeout", async () => {
      const proxy = await startRegistryProxy(registry.url, { delayMs: 2_000 });
      try {
        const started = Date.now();
        const d = (
          await failure(
            verifyManifest(
              { registry: proxy.host, repository: "daemin-kim/hamalog-backend", reference: SHA },
              { timeoutMs: 300 },
            ),
          )
        ).diagnosis;
        expect(Date.now() - started).toBeLessThan(1_500);
        expect(d.kind).toBe("network");
        expect(d.message).toMatch(/timeout/);
      } finally {
        await proxy.stop();
      }
    });
  });

  it("registry stopped mid-way → network diagnosis naming the host and the refusal", async () => {
    const second = await startRegistry();
    try {
      pushImage(LOCAL_A, `${second.host}/acme/app:${SHA}`);
      docker(["rmi", `${second.host}/acme/app:${SHA}`]);
      const client = new RegistryClient();
      const ok = await verifyManifest({ registry: second.host, repository: "acme/app", reference: SHA }, { client });
      expect(ok.digest).toBe(pushedDigest);
    } finally {
      await second.stop();
    }
    const d = (await failure(verifyManifest({ registry: second.host, repository: "acme/app", reference: SHA })))
      .diagnosis;
    expect(d.kind).toBe("network");
    expect(d.host).toBe(second.host);
    expect(d.message).toMatch(new RegExp(`${second.host} could not be reached — connection refused`));
  });

  describe("the Dagger door (Hamalog.verifyManifest; Directory and Secret stand-ins, real registry)", () => {
    /** A source directory holding only pipeline.yaml. */
    const file = (text: string) => {
      const dir = {
        filter: () => dir,
        exists: async (path: string) => path === "pipeline.yaml",
        file: () => ({ contents: async () => text }),
      };
      return new Hamalog(dir as unknown as Directory);
    };
    it("returns a VerifiedImage pinned by digest, with the config's platform checked", async () => {
      const cfg = file(
        `image:\n  registry: "${registry.host}"\n  repository: acme/multi\ndeploy:\n  platform: linux/arm64\n`,
      );
      const v = await cfg.verifyManifest(undefined, "multi");
      expect(v.reference).toMatch(new RegExp(`^${registry.host}/acme/multi:multi@sha256:[0-9a-f]{64}$`));
      expect(v.platforms).toEqual(["linux/amd64", "linux/arm64/v8"]);
      expect(v.mediaType).toBe(DOCKER_LIST);
    });

    it("throws the diagnosis for the seed's case; a token without a username is a config error", async () => {
      const cfg = file(`image:\n  registry: "${registry.host}"\n  repository: acme/seed-branch\n`);
      await expect(cfg.verifyManifest(SHA)).rejects.toThrow(
        /found instead:\n  main-453a6545b97fe240727c378291230abeb793d851/i,
      );
      const secret = { plaintext: async () => "x-token-value" } as unknown as Secret;
      await expect(cfg.verifyManifest(SHA, undefined, secret)).rejects.toThrow(/image\/username: required/);
    });
  });

  describe("the CLI door", () => {
    it("prints only the digest on stdout, exit 0", async () => {
      const r = await hamalog(verifyManifestArgv(registry.host, "daemin-kim/hamalog-backend", "--tag", SHA));
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`${pushedDigest}\n`);
      expect(r.stderr).toMatch(/^verified /);
    });

    it("--sha verifies the tag from the tag definition; the seed case fails with the diagnosis on stderr, exit 1", async () => {
      const ok = await hamalog(
        verifyManifestArgv(registry.host, "daemin-kim/hamalog-backend", "--sha", SHA.toUpperCase()),
      );
      expect(ok.code).toBe(0);
      expect(ok.stdout.trim()).toBe(pushedDigest);
      const bad = await hamalog(verifyManifestArgv(registry.host, "acme/seed-branch", "--sha", SHA));
      expect(bad.code).toBe(1);
      expect(bad.stdout).toBe("");
      expect(bad.stderr).toContain(`main-${SHA} — the same commit (full sha)`);
      expect(bad.stderr).toMatch(/Next: the pushing side used another tag convention/);
    });

    it("--json gives the structured result or diagnosis", async () => {
      const ok = await hamalog(
        verifyManifestArgv(registry.host, "acme/multi", "--tag", "multi", "--platform", "linux/amd64", "--json"),
      );
      expect(ok.code).toBe(0);
      const j = JSON.parse(ok.stdout);
      expect(j).toMatchObject({
        ok: true,
        mediaType: DOCKER_LIST,
        platforms: ["linux/amd64", "linux/arm64/v8"],
        requests: 1,
      });
      const bad = await hamalog(verifyManifestArgv(registry.host, "acme/seed-short", "--sha", SHA, "--json"));
      expect(bad.code).toBe(1);
      const d = JSON.parse(bad.stdout);
      expect(d.ok).toBe(false);
      expect(d.diagnosis.kind).toBe("manifest-unknown");
      expect(d.diagnosis.nearMisses[0].tag).toBe("sha-453a654");
    });

    it("--config FILE --sha reads image and deploy/platform from the config", async () => {
      const dir = mkdtempSync(join(tmpdir(), "hamalog-verify-cfg-"));
      try {
        const file = join(dir, "pipeline.yaml");
        writeFileSync(
          file,
          `image:\n  registry: "${registry.host}"\n  repository: daemin-kim/hamalog-backend\ndeploy:\n  platform: linux/arm64\n`,
        );
        const r = await hamalog(["verify-manifest", "--config", file, "--sha", SHA]);
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(/has no linux\/arm64 image/);
        const ok = await hamalog(["verify-manifest", "--config", file, "--sha", SHA, "--platform", "linux/amd64"]);
        expect(ok.code).toBe(0);
        expect(ok.stdout.trim()).toBe(pushedDigest);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it.each([
      [["--image", "127.0.0.1:1/acme/x"], /--tag or --sha: required/],
      [["--image", "127.0.0.1:1/acme/x", "--tag", "a", "--sha", SHA], /give only one/],
      [["--image", "127.0.0.1:1/acme/x", "--tag", "no good"], /not a valid tag/],
      [["--image", "127.0.0.1:1/acme/x:v1", "--tag", "v1"], /without a tag or digest/],
      [["--image", "127.0.0.1:1/acme/x", "--sha", "main-" + SHA], /prefix `main-`/],
      [["--image", "127.0.0.1:1/acme/x", "--tag", "v1", "--platform", "x86"], /must look like OS\/ARCH/],
      [
        ["--image", "127.0.0.1:1/acme/x", "--tag", "v1", "--username", "u"],
        /--password-env VAR or --password-file FILE: required/,
      ],
      [["--image", "127.0.0.1:1/acme/x", "--tag", "v1", "--bogus"], /Unknown option/],
    ])("bad flags %j → exit 2", async (args, message) => {
      const r = await hamalog(["verify-manifest", ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
    });
  });
});
