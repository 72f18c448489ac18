// verify-manifest against REAL distribution registries with auth: htpasswd (Basic) and token auth (our own
// token service signing JWTs the registry verifies). Right, wrong and no credentials; request counts cold and
// warm; token lifetime; and the password/token never appears in any output, message or JSON.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RegistryClient, RegistryError, verifyManifest, type VerifyRequest } from "../../ci/core/registry/verify.js";
import { hamalog } from "../helpers/cli.js";
import { buildAppImage, docker } from "./helpers/images.js";
import { loginAndPushAsync, startRegistry, verifyManifestArgv, type Registry } from "./helpers/registry.js";
import { startTokenServer, type TokenServer } from "./helpers/token-server.js";
import { parseSha } from "../../ci/core/tags.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");
const LOCAL = "hamalog-verify-auth-test/app:1";
const USER = "hamalog-ci";
// Distinctive so a leak anywhere is unmistakable.
const PASSWORD = "s3cret-Pa55word-9f8e7d";
const WRONG = "wrong-Pa55word-1a2b3c";
const b64 = (u: string, p: string) => Buffer.from(`${u}:${p}`).toString("base64");

/** Everything a failure exposes: message, stack, the diagnosis as JSON. */
function exposed(e: RegistryError): string {
  return `${e.message}\n${e.stack}\n${JSON.stringify(e.diagnosis)}`;
}

function expectNoSecret(text: string): void {
  for (const secret of [PASSWORD, WRONG, b64(USER, PASSWORD), b64(USER, WRONG)]) expect(text).not.toContain(secret);
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\./); // no JWT
}

async function failure(p: Promise<unknown>): Promise<RegistryError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RegistryError) {
      expectNoSecret(exposed(e));
      return e;
    }
    throw e;
  }
  throw new Error("expected verifyManifest to fail");
}

beforeAll(() => {
  buildAppImage(LOCAL, { version: "auth" });
});
afterAll(() => {
  try {
    docker(["rmi", "-f", LOCAL]);
  } catch {
    /* already gone */
  }
});

describe("htpasswd (Basic) registry", () => {
  let registry: Registry;
  let digest: string;
  const req = (extra: Partial<VerifyRequest> = {}): VerifyRequest => ({
    registry: registry.host,
    repository: "acme/private",
    reference: SHA,
    ...extra,
  });

  beforeAll(async () => {
    registry = await startRegistry({ auth: { htpasswd: { [USER]: PASSWORD } } });
    digest = await loginAndPushAsync(LOCAL, registry.host, `${registry.host}/acme/private:${SHA}`, USER, PASSWORD);
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("right credentials pass: 2 requests cold (401 challenge + Basic), 1 warm", async () => {
    const client = new RegistryClient();
    const cold = await verifyManifest(req({ credentials: { username: USER, password: PASSWORD } }), { client });
    expect(cold.digest).toBe(digest);
    expect(cold.requests).toBe(2);
    const warm = await verifyManifest(req({ credentials: { username: USER, password: PASSWORD } }), { client });
    expect(warm.requests).toBe(1);
  });

  it("wrong credentials are `unauthorized`, naming the user and not the password", async () => {
    const e = await failure(verifyManifest(req({ credentials: { username: USER, password: WRONG } })));
    expect(e.diagnosis.kind).toBe("unauthorized");
    expect(e.diagnosis.status).toBe(401);
    expect(e.message).toMatch(/rejected the username\/password of user `hamalog-ci`/);
  });

  it("no credentials are `anonymous-unauthorized`, saying how to pass them", async () => {
    const e = await failure(verifyManifest(req()));
    expect(e.diagnosis.kind).toBe("anonymous-unauthorized");
    expect(e.message).toMatch(/requires credentials.*--password-env VAR/s);
  });

  it("a missing tag behind Basic auth still lists the repository's tags", async () => {
    const e = await failure(
      verifyManifest(req({ reference: `main-${SHA}`, credentials: { username: USER, password: PASSWORD } })),
    );
    expect(e.diagnosis.kind).toBe("manifest-unknown");
    expect(e.diagnosis.nearMisses?.[0]?.tag).toBe(SHA);
  });
});

describe("token-auth registry (own JWT token service)", () => {
  let tokens: TokenServer;
  let registry: Registry;
  let digest: string;
  const req = (extra: Partial<VerifyRequest> = {}): VerifyRequest => ({
    registry: registry.host,
    repository: "daemin-kim/hamalog-backend",
    reference: SHA,
    ...extra,
  });
  const creds = { username: USER, password: PASSWORD };

  beforeAll(async () => {
    tokens = await startTokenServer({ users: { [USER]: PASSWORD } });
    registry = await startRegistry({ auth: tokens.registryAuth });
    digest = await loginAndPushAsync(
      LOCAL,
      registry.host,
      `${registry.host}/daemin-kim/hamalog-backend:${SHA}`,
      USER,
      PASSWORD,
    );
    await loginAndPushAsync(LOCAL, registry.host, `${registry.host}/daemin-kim/other:main-${SHA}`, USER, PASSWORD);
  });
  afterAll(async () => {
    await registry?.stop();
    await tokens?.stop();
  });

  it("right credentials pass: 3 requests cold, 1 warm, one token fetched; 2 for a new scope", async () => {
    const client = new RegistryClient();
    const before = tokens.requests.length;
    const cold = await verifyManifest(req({ credentials: creds }), { client });
    expect(cold.digest).toBe(digest);
    expect(cold.requests).toBe(3); // 401 challenge, token, manifest
    const warm = await verifyManifest(req({ credentials: creds }), { client });
    expect(warm.requests).toBe(1);
    expect(warm.digest).toBe(digest);
    expect(tokens.requests.slice(before)).toEqual([
      { user: USER, scope: "repository:daemin-kim/hamalog-backend:pull", status: 200 },
    ]);
    // Another repository on the same registry: the challenge is known, so the token is fetched up front.
    const other = await failure(
      verifyManifest(req({ repository: "daemin-kim/other", credentials: creds, wantedSha: SHA }), { client }),
    );
    expect(other.diagnosis.kind).toBe("manifest-unknown");
    expect(other.diagnosis.nearMisses?.[0]?.tag).toBe(`main-${SHA}`);
  });

  it("an expired token is fetched again (cache honours the token's lifetime)", async () => {
    const shortLived = await startTokenServer({ users: { [USER]: PASSWORD }, expiresIn: 2 });
    const reg = await startRegistry({ auth: shortLived.registryAuth });
    try {
      await loginAndPushAsync(LOCAL, reg.host, `${reg.host}/acme/app:${SHA}`, USER, PASSWORD);
      const client = new RegistryClient();
      const r = { registry: reg.host, repository: "acme/app", reference: SHA, credentials: creds };
      expect((await verifyManifest(r, { client })).requests).toBe(3);
      expect((await verifyManifest(r, { client })).requests).toBe(1);
      await new Promise((res) => setTimeout(res, 2_100));
      expect((await verifyManifest(r, { client })).requests).toBe(2); // fresh token up front, then the GET
    } finally {
      await reg.stop();
      await shortLived.stop();
    }
  });

  it("wrong credentials: the token service refuses → `unauthorized` naming the token service", async () => {
    const e = await failure(verifyManifest(req({ credentials: { username: USER, password: WRONG } })));
    expect(e.diagnosis.kind).toBe("unauthorized");
    expect(e.diagnosis.host).toBe(`127.0.0.1:${tokens.port}`);
    expect(e.message).toMatch(
      /the token service 127\.0\.0\.1:\d+ rejected the credentials of user `hamalog-ci` \(HTTP 401/,
    );
  });

  it("no credentials: an anonymous token without access → `anonymous-unauthorized`", async () => {
    const e = await failure(verifyManifest(req()));
    expect(e.diagnosis.kind).toBe("anonymous-unauthorized");
    expect(e.diagnosis.status).toBe(401);
  });

  describe("the CLI with secrets through --password-env / --password-file", () => {
    it("passes with --password-env; the password is in no output", async () => {
      const r = await hamalog(
        verifyManifestArgv(
          registry.host,
          "daemin-kim/hamalog-backend",
          "--tag",
          SHA,
          "--username",
          USER,
          "--password-env",
          "HAMALOG_TEST_REGISTRY_PASSWORD",
          "--json",
        ),
        { env: { HAMALOG_TEST_REGISTRY_PASSWORD: PASSWORD } },
      );
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, digest, requests: 3 });
      expectNoSecret(r.stdout + r.stderr);
    });

    it("wrong password from --password-file: exit 1, diagnosis on stderr and in --json, no secret anywhere", async () => {
      const dir = mkdtempSync(join(tmpdir(), "hamalog-verify-secret-"));
      try {
        const file = join(dir, "password");
        writeFileSync(file, `${WRONG}\n`, { mode: 0o600 });
        const r = await hamalog(
          verifyManifestArgv(
            registry.host,
            "daemin-kim/hamalog-backend",
            "--sha",
            SHA,
            "--username",
            USER,
            "--password-file",
            file,
            "--json",
          ),
          {
            env: { HAMALOG_DEBUG: "1" },
          },
        );
        expect(r.code).toBe(1);
        expect(JSON.parse(r.stdout).diagnosis.kind).toBe("unauthorized");
        expect(r.stderr).toMatch(/rejected the credentials of user `hamalog-ci`/);
        expectNoSecret(r.stdout + r.stderr);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it.each([
      [PASSWORD, /not an environment variable name/],
      ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", /name not shown: is it the secret itself/],
    ])("a secret passed by mistake as --password-env's NAME is not echoed back (%#)", async (secret, message) => {
      const r = await hamalog(
        verifyManifestArgv(
          registry.host,
          "daemin-kim/hamalog-backend",
          "--tag",
          SHA,
          "--username",
          USER,
          "--password-env",
          secret,
        ),
      );
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout + r.stderr).not.toContain(secret);
    });
  });
});
