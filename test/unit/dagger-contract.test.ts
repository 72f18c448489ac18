// The Dagger door keeps the core's promises, proven without an engine: the module class is driven through the
// REAL @dagger.io/dagger client against a stand-in for the engine session endpoint (test/helpers/dagger-stand-in.ts),
// and every GraphQL document the module sends is checked.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { dag, type Container, type DirectoryID, type Platform, type SecretID } from "@dagger.io/dagger";
import { Hamalog } from "../../ci/src/index.js";
import { BUILD_CONTEXT_IGNORE, publishReferences } from "../../ci/core/publish.js";
import { parseSha, tagsFor } from "../../ci/core/tags.js";
import { ROOT } from "../helpers/cli.js";
import { introspect } from "../helpers/introspect.js";
import { DaggerStandIn, EngineError } from "../helpers/dagger-stand-in.js";
import { stringSliceFlag } from "../helpers/dagger-cli.js";
import { freePort } from "../integration/helpers/ports.js";

const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");
const TOKEN_PLAINTEXT = "ghp_contractTestTokenValue0123456789";
const SSH_KEY_PLAINTEXT = "-----BEGIN OPENSSH PRIVATE KEY-----contract-test-key-----END OPENSSH PRIVATE KEY-----";
const IMAGE = "ghcr.io/daemin-kim/hamalog-backend";
const SOURCE_URL = "https://github.com/daemin-kim/hamalog-backend";

/**
 * Hamalog's own pipeline.yaml (platforms: [linux/amd64], so push publishes one index), with its host key pinned
 * as a user does before the first deploy (the file ships the CHANGE-ME placeholder, which stops every deploy).
 */
const OWN_PIPELINE_YAML = readFileSync(join(ROOT, "pipeline.yaml"), "utf8");
const PINNED = `SHA256:${"x".repeat(43)}`;
const PIPELINE_YAML = OWN_PIPELINE_YAML.replace(/^( {2}hostKey:) CHANGE-ME$/m, `$1 ${PINNED}`);
/** The same image without platforms: one image for the engine's platform. */
const SINGLE_PLATFORM_YAML = `image:\n  registry: ghcr.io\n  repository: daemin-kim/hamalog-backend\n  source: ${SOURCE_URL}\n  username: hamalog-bot\nbuild:\n  dockerfile: docker/Dockerfile\n  buildArgs: { JAR_FILE: app.jar }\n`;
const MULTI_PLATFORM_YAML = `${SINGLE_PLATFORM_YAML}  platforms: [linux/amd64, linux/arm64]\n`;

/** A real (unused) private key, for door checks that come after the key check. */
const REAL_KEY = (() => {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-contract-key-"));
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "key")]);
    return readFileSync(join(dir, "key"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
})();

const COMPOSE = "services:\n  hamalog-app:\n    image: placeholder\n";
const standIn = new DaggerStandIn({
  secrets: {
    "secret-registry-token": TOKEN_PLAINTEXT,
    "secret-ssh-key": SSH_KEY_PLAINTEXT,
    "secret-real-ssh-key": REAL_KEY,
    "secret-deploy-token": "read-only-deploy-token",
  },
  directories: ["dir-source", "dir-bad-template", "dir-no-config"],
  // The source holds the configs (the constructor's config path is relative to it) and the compose template; ship
  // renders the template before building, so a bad template fails before anything is pushed.
  directoryFiles: {
    "dir-source": {
      "pipeline.yaml": PIPELINE_YAML,
      "own.yaml": OWN_PIPELINE_YAML,
      "single.yaml": SINGLE_PLATFORM_YAML,
      "multi.yaml": MULTI_PLATFORM_YAML,
      "deploy/docker-compose.prod.yml": COMPOSE,
      "files.yaml": PIPELINE_YAML.replace(
        /^( {2}composeFile: .*)$/m,
        "$1\n  files: [nginx-docker.conf, conf/tunnel.yml]",
      ),
      "nginx-docker.conf": "upstream app { server hamalog-app:8080; }\n",
      "conf/tunnel.yml": "ingress: []\n",
    },
    "dir-bad-template": {
      "pipeline.yaml": PIPELINE_YAML,
      "deploy/docker-compose.prod.yml": "services:\n  web:\n    image: placeholder\n",
    },
    "dir-no-config": { "deploy/docker-compose.prod.yml": COMPOSE },
  },
  failDockerfiles: ["broken.Dockerfile"],
});

interface Construct {
  /** The source directory's id (default dir-source). */
  dir?: string;
  /** The config path inside it (default single.yaml: one platform, no deploy). */
  config?: string;
  set?: string[];
}
/** Run `fn` with a module instance built as the engine builds it (constructor arguments), `dag` on the stand-in. */
const inSession = <T>(fn: (mod: Hamalog) => Promise<T>, c: Construct = {}): Promise<T> =>
  standIn.session(() =>
    fn(new Hamalog(dag.loadDirectoryFromID((c.dir ?? "dir-source") as DirectoryID), c.config ?? "single.yaml", c.set)),
  );

const token = () => dag.loadSecretFromID("secret-registry-token" as SecretID);

beforeAll(() => standIn.start());
afterAll(() => standIn.stop());
afterEach(() => {
  const unexpected = [...standIn.unexpected];
  const queries = [...standIn.queries];
  for (const list of [standIn.queries, standIn.publishes, standIn.plaintextReads, standIn.unexpected]) list.length = 0;
  // Whatever a test did, the module never asked the stand-in for something it does not answer ...
  expect(unexpected).toEqual([]);
  // ... and no document the module sent carries the secret's plaintext.
  for (const q of queries) {
    expect(q).not.toContain(TOKEN_PLAINTEXT);
    expect(q).not.toContain(SSH_KEY_PLAINTEXT);
  }
});

describe("Dagger door contract (real SDK client, stand-in session endpoint)", () => {
  it("push on the default branch publishes exactly the tag-definition references, with the Secret as registry auth", async () => {
    const out = await inSession((m) => m.push(SHA, "main", token()));

    const want = publishReferences({
      registry: "ghcr.io",
      repository: "daemin-kim/hamalog-backend",
      sha: SHA,
      branch: "main",
    });
    expect(want).toEqual([`${IMAGE}:${SHA}`, `${IMAGE}:latest`]);
    expect(standIn.publishes.map((p) => p.address)).toEqual(want);
    expect(standIn.publishes.map((p) => p.address.split(":").pop())).toEqual(tagsFor({ sha: SHA, branch: "main" }));
    for (const p of standIn.publishes) {
      expect(p.container.auth).toEqual([
        { address: "ghcr.io", username: "hamalog-bot", secret: "secret-registry-token" },
      ]);
      expect(p.variants).toEqual([]);
      expect(p.container.build).toEqual({
        directory: "dir-source",
        dockerfile: "docker/Dockerfile",
        buildArgs: [{ name: "JAR_FILE", value: "app.jar" }],
      });
    }
    // The module returns what the engine answered, ref@digest, one digest for both tags.
    expect(out).toEqual(standIn.publishes.map((p) => p.answer));
    expect(new Set(out.map((r) => r.split("@")[1])).size).toBe(1);
    expect(standIn.plaintextReads).toEqual([]);
    // The secret reached the engine only as its id, inside withRegistryAuth.
    const withAuth = standIn.queries.filter((q) => q.includes("withRegistryAuth"));
    expect(withAuth).toHaveLength(2);
    for (const q of withAuth)
      expect(q).toMatch(
        /withRegistryAuth \(address: "ghcr.io",username: "hamalog-bot",secret: "secret-registry-token"\)/,
      );
  });

  it("push on another branch publishes only the sha reference", async () => {
    await inSession((m) => m.push(SHA, "refs/heads/feature/login", token()));
    expect(standIn.publishes.map((p) => p.address)).toEqual([`${IMAGE}:${SHA}`]);
  });

  it("push with platforms publishes one index: an empty base with registry auth and one variant per platform", async () => {
    const out = await inSession((m) => m.push(SHA, "main", token()), { config: "multi.yaml" });
    expect(standIn.publishes.map((p) => p.address)).toEqual([`${IMAGE}:${SHA}`, `${IMAGE}:latest`]);
    for (const p of standIn.publishes) {
      expect(p.container.build).toBeUndefined();
      expect(p.container.auth).toEqual([
        { address: "ghcr.io", username: "hamalog-bot", secret: "secret-registry-token" },
      ]);
      expect(p.variants.map((v) => v.build?.platform)).toEqual(["linux/amd64", "linux/arm64"]);
      for (const v of p.variants) {
        expect(v.build?.dockerfile).toBe("docker/Dockerfile");
        expect(v.labels).toContainEqual({ name: "org.opencontainers.image.revision", value: SHA });
        expect(v.auth).toEqual([]);
      }
    }
    expect(out).toHaveLength(2);
  });

  it("push reads the source's config; the constructor's --set overrides it, a named argument overrides --set", async () => {
    await inSession((m) => m.push(SHA, "develop", token(), "someone"), {
      config: "pipeline.yaml",
      set: [
        "image/registry=127.0.0.1:5001",
        "image/repository=team/app",
        "image/username=not-used",
        "defaultBranch=develop",
        "build/dockerfile=Dockerfile.ci",
        "build/buildArgs=A=1",
        "build/platforms=linux/arm64",
      ],
    });
    expect(standIn.publishes.map((p) => p.address)).toEqual([
      `127.0.0.1:5001/team/app:${SHA}`,
      "127.0.0.1:5001/team/app:latest",
    ]);
    const p = standIn.publishes[0]!;
    expect(p.container.auth).toEqual([
      { address: "127.0.0.1:5001", username: "someone", secret: "secret-registry-token" },
    ]);
    expect(p.variants.map((v) => v.build)).toEqual([
      {
        directory: expect.stringMatching(/^Directory:/), // build/prepare's context: below
        dockerfile: "Dockerfile.ci",
        buildArgs: [{ name: "A", value: "1" }],
        platform: "linux/arm64",
      },
    ]);
    expect(standIn.directoryState(p.variants[0]!.build!.directory)).toMatchObject({
      of: { of: { id: "dir-source" }, without: "build/libs" },
    });
  });

  it("push of a given container publishes that container as is", async () => {
    const out = await inSession(async (m) => {
      const built = await m.build(SHA);
      return m.push(SHA, "feature", token(), "bot", built);
    });
    expect(standIn.publishes).toHaveLength(1);
    const p = standIn.publishes[0]!;
    expect(p.variants).toEqual([]);
    expect(p.container.build?.dockerfile).toBe("docker/Dockerfile");
    expect(out).toEqual([p.answer]);
  });

  it("push refuses a bad sha before anything reaches the registry, with the tag definition's explanation", async () => {
    await expect(inSession((m) => m.push(`main-${SHA}`, "main", token()))).rejects.toThrow(
      /prefix `main-`.*type=sha,prefix=\{\{branch\}\}-/,
    );
    expect(standIn.publishes).toEqual([]);
    expect(standIn.queries.some((q) => q.includes("publish"))).toBe(false);
  });

  it("build is lazy and passes the dockerfile, build args, platform and OCI labels", async () => {
    let before: string[] = [];
    const id = await inSession(
      async (m) => {
        const c: Container = await m.build(SHA, "linux/arm64" as Platform, "2024-05-01T12:00:00Z");
        before = [...standIn.queries];
        return c.id();
      },
      { set: ["build/dockerfile=ops/Dockerfile.prod", "build/buildArgs=B=2", "build/buildArgs=A=1"] },
    );
    // Only the config was read before the container was used: building is the engine's job, later.
    expect(before).toHaveLength(2);
    expect(before[0]).toMatch(
      /loadDirectoryFromID \(id: "dir-source"\) \{ filter \(exclude: \[.*\]\) \{ exists \(path: "single.yaml"\)/,
    );
    expect(before[1]).toMatch(/filter \(exclude: \[.*\]\) \{ file \(path: "single.yaml"\) \{ contents/);
    const state = standIn.container(id)!;
    expect(state.build).toEqual({
      directory: "dir-source",
      dockerfile: "ops/Dockerfile.prod",
      buildArgs: [
        { name: "A", value: "1" },
        { name: "B", value: "2" },
      ],
      platform: "linux/arm64",
    });
    expect(state.labels).toEqual([
      { name: "org.opencontainers.image.revision", value: SHA },
      { name: "org.opencontainers.image.source", value: SOURCE_URL },
      { name: "org.opencontainers.image.created", value: "2024-05-01T12:00:00Z" },
    ]);
    expect(state.auth).toEqual([]);
  });

  it("build twice with the same input sends the same documents (no clock or random values)", async () => {
    const run = () => inSession(async (m) => (await m.build(SHA)).id(), { config: "pipeline.yaml" });
    const a = await run();
    const first = [...standIn.queries];
    standIn.queries.length = 0;
    const b = await run();
    expect(b).toBe(a);
    expect(standIn.queries).toEqual(first);
    expect(standIn.container(a)!.labels.map((l) => l.name)).toEqual([
      "org.opencontainers.image.revision",
      "org.opencontainers.image.source",
    ]);
  });
});

describe("build/prepare: the app's own build step (Hamalog: ./gradlew bootJar on JDK 21) before the Dockerfile", () => {
  const GRADLE = ["./gradlew", "bootJar", "-x", "test", "--no-daemon"];
  const JDK = "eclipse-temurin:21-jdk@sha256:2e387a63a9086232a53fb668f78bcda1f233118f234326fcb88b0bb2a968ec39";
  const source = { id: "dir-source" };
  const withoutJars = { of: source, without: "build/libs" };

  it("runs in its pinned image with its cache volumes on the context without build/libs; its build/libs is what the Dockerfile gets", async () => {
    const id = await inSession(async (m) => (await m.build(SHA)).id(), { config: "pipeline.yaml" });
    const build = standIn.container(id)!.build!;
    expect(build.dockerfile).toBe("Dockerfile");
    expect(standIn.directoryState(build.directory)).toEqual({
      of: withoutJars,
      with: "build/libs",
      source: {
        container: {
          labels: [],
          auth: [],
          from: JDK,
          steps: [
            { cache: "gradle-caches", path: "/root/.gradle/caches" },
            { cache: "gradle-wrapper", path: "/root/.gradle/wrapper" },
            { directory: withoutJars, path: "/src" },
            { workdir: "/src" },
            { exec: GRADLE },
          ],
        },
        directory: "/src/build/libs",
      },
    });
  });

  it("every platform variant packages the one step's output (the same definition: the engine runs it once)", async () => {
    await inSession((m) => m.push(SHA, "main", token(), "bot"), {
      config: "pipeline.yaml",
      set: ["build/platforms=linux/amd64", "build/platforms=linux/arm64"],
    });
    const variants = standIn.publishes[0]!.variants;
    expect(variants.map((v) => v.build!.platform)).toEqual(["linux/amd64", "linux/arm64"]);
    expect(variants[0]!.build!.directory).toBe(variants[1]!.build!.directory);
    expect(JSON.stringify(standIn.directoryState(variants[0]!.build!.directory))).toContain('"exec":["./gradlew"');
  });

  it("build/context: the Dockerfile and the step see that directory of --source", async () => {
    const id = await inSession(async (m) => (await m.build(SHA)).id(), {
      config: "pipeline.yaml",
      set: ["build/context=backend"],
    });
    const state = standIn.directoryState(standIn.container(id)!.build!.directory);
    expect(state).toMatchObject({ of: { of: { of: source, directory: "backend" }, without: "build/libs" } });
  });

  it("a failing step stops ship in phase `build`, naming the command; nothing is published", async () => {
    const failing = new DaggerStandIn({
      secrets: { "secret-registry-token": TOKEN_PLAINTEXT, "secret-real-ssh-key": REAL_KEY },
      directories: ["dir-source"],
      directoryFiles: { "dir-source": { "pipeline.yaml": PIPELINE_YAML, "deploy/docker-compose.prod.yml": COMPOSE } },
      failCommands: ["./gradlew"],
    });
    await failing.start();
    try {
      const err = await failing
        .session(() =>
          new Hamalog(dag.loadDirectoryFromID("dir-source" as DirectoryID), "pipeline.yaml").ship(
            SHA,
            "main",
            dag.loadSecretFromID("secret-registry-token" as SecretID),
            dag.loadSecretFromID("secret-real-ssh-key" as SecretID),
            "bot",
          ),
        )
        .then(
          () => undefined,
          (e: Error) => e,
        );
      expect(err?.message).toMatch(
        /ship failed in phase `build`: .*"\.\/gradlew bootJar -x test --no-daemon" did not complete successfully[\s\S]*not run: push, verify-manifest, deploy/,
      );
      expect(failing.publishes).toEqual([]);
      expect(failing.unexpected).toEqual([]);
    } finally {
      await failing.stop();
    }
  });

  it("a builder image without a digest is refused before anything is built, saying how to pin it", async () => {
    const yaml = PIPELINE_YAML.replace(/(image: eclipse-temurin:21-jdk)@sha256:[0-9a-f]{64}/, "$1");
    expect(yaml).not.toBe(PIPELINE_YAML);
    const { parseConfig } = await import("../../ci/core/config.js");
    expect(() => parseConfig(yaml, "pipeline.yaml", {})).toThrow(
      /build\/prepare\/image: must be pinned by digest, e\.g\. eclipse-temurin:21-jdk@sha256:… \(read the digest with `docker buildx imagetools inspect/,
    );
  });
});

describe("ship through the Dagger door (phases named, fail fast)", () => {
  const sshKey = () => dag.loadSecretFromID("secret-real-ssh-key" as SecretID);
  /** What ship reads before the build: it opens the deploy's door first (the key is checked, the login named). */
  const DOOR_READS = ["secret-real-ssh-key", "secret-registry-token"];

  it("an SSH key Secret that is no key stops ship before the build: nothing built or published", async () => {
    const notAKey = () => dag.loadSecretFromID("secret-ssh-key" as SecretID);
    await expect(
      inSession((m) => m.ship(SHA, "main", token(), notAKey(), "bot"), { config: "pipeline.yaml" }),
    ).rejects.toThrow(/^--ssh-key: not a usable SSH private key/);
    expect(standIn.publishes).toEqual([]);
    expect(standIn.queries.filter((q) => /\b(sync|dockerBuild)\b/.test(q))).toEqual([]);
  });

  it("a registry token without image/username stops ship before the build", async () => {
    await expect(inSession((m) => m.ship(SHA, "main", token(), sshKey()), { config: "pipeline.yaml" })).rejects.toThrow(
      "image/username: required with --registry-token",
    );
    expect(standIn.publishes).toEqual([]);
    expect(standIn.queries.filter((q) => /\b(sync|dockerBuild)\b/.test(q))).toEqual([]);
  });

  it("a compose template without the app service stops ship before the build: nothing built or published", async () => {
    await expect(
      inSession((m) => m.ship(SHA, "main", token(), sshKey(), "bot"), {
        dir: "dir-bad-template",
        config: "pipeline.yaml",
      }),
    ).rejects.toThrow(/hamalog-app/);
    expect(standIn.publishes).toEqual([]);
    expect(standIn.plaintextReads).toEqual(DOOR_READS);
    expect(standIn.queries.filter((q) => /\b(sync|dockerBuild)\b/.test(q))).toEqual([]);
  });

  it("--deploy-token is what the host's door reads instead of the push token", async () => {
    const deployToken = () => dag.loadSecretFromID("secret-deploy-token" as SecretID);
    const u = undefined;
    await expect(
      inSession((m) => m.ship(SHA, "main", token(), sshKey(), "bot", u, deployToken(), "reader"), {
        dir: "dir-bad-template",
        config: "pipeline.yaml",
      }),
    ).rejects.toThrow(/hamalog-app/);
    expect(standIn.plaintextReads).toEqual(["secret-real-ssh-key", "secret-deploy-token"]);
    expect(standIn.publishes).toEqual([]);
  });

  it("a failing build stops ship in phase `build`: nothing is published, no secret is read after the door", async () => {
    await expect(
      inSession((m) => m.ship(SHA, "main", token(), sshKey(), "bot"), {
        config: "pipeline.yaml",
        set: ["build/dockerfile=broken.Dockerfile"],
      }),
    ).rejects.toThrow(
      /ship failed in phase `build`: .*did not complete successfully[\s\S]*not run: push, verify-manifest, deploy/,
    );
    expect(standIn.publishes).toEqual([]);
    expect(standIn.plaintextReads).toEqual(DOOR_READS);
    expect(standIn.queries.filter((q) => /\bsync\b/.test(q))).toHaveLength(1); // pipeline.yaml: one platform
  });

  it("an unreachable registry stops ship in phase `verify-manifest` after the push; the deploy never starts", async () => {
    const closed = await freePort(); // bound, then closed: nothing listens there
    const err = await inSession((m) => m.ship(SHA, "main", token(), sshKey(), "bot"), {
      config: "pipeline.yaml",
      set: [`image/registry=127.0.0.1:${closed}`],
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(
      /ship failed in phase `verify-manifest`: [\s\S]*127\.0\.0\.1:\d+[\s\S]*\(done: build, push; not run: deploy\)/,
    );
    expect(standIn.publishes.map((p) => p.address)).toEqual([
      `127.0.0.1:${closed}/daemin-kim/hamalog-backend:${SHA}`,
      `127.0.0.1:${closed}/daemin-kim/hamalog-backend:latest`,
    ]);
    // The token was read again to ask the registry (plaintext travels in the engine's answer, never in a query).
    expect(standIn.plaintextReads).toEqual([...DOOR_READS, "secret-registry-token"]);
    expect(err?.message).not.toContain(TOKEN_PLAINTEXT);
  });

  it("Hamalog's pipeline.yaml as shipped (hostKey: CHANGE-ME) stops ship before anything is built, saying how to pin", async () => {
    expect(PIPELINE_YAML).toContain(`hostKey: ${PINNED}`);
    await expect(
      inSession((m) => m.ship(SHA, "main", token(), sshKey(), "bot"), { config: "own.yaml" }),
    ).rejects.toThrow(
      /^deploy\/hostKey: still the placeholder CHANGE-ME in pipeline\.yaml — .*npx hamalog host-key --host hamalog\.example\.com/,
    );
    expect(standIn.publishes).toEqual([]);
    expect(standIn.queries.filter((q) => /\bsync\b/.test(q))).toEqual([]); // nothing built
  });

  it("a config that cannot deploy fails before anything is built", async () => {
    await expect(inSession((m) => m.ship(SHA, "main", token(), sshKey()))).rejects.toThrow(
      /deploy\/host: required \(set it in pipeline\.yaml or pass `dagger call --set deploy\/host=VALUE …`\)[\s\S]*deploy\/user: required/,
    );
    expect(standIn.queries).toHaveLength(2); // the config found and read, nothing else
  });
});

describe("deploy / rollback / status open the same door as the CLI (deploy/door.ts)", () => {
  const key = (id: string) => dag.loadSecretFromID(id as SecretID);

  it("an SSH key Secret that is no key is a config error naming --ssh-key, before any connection", async () => {
    const port = await freePort(); // nothing listens there: a door that skipped the check would try to connect
    await expect(
      inSession((m) => m.status(key("secret-ssh-key")), {
        config: "pipeline.yaml",
        set: ["deploy/host=127.0.0.1", `deploy/port=${port}`],
      }),
    ).rejects.toThrow(/^--ssh-key: not a usable SSH private key/);
  });

  it("a registry token without image/username names the Dagger ways to give one", async () => {
    const port = await freePort();
    await expect(
      inSession((m) => m.rollback(key("secret-real-ssh-key"), undefined, token()), {
        config: "pipeline.yaml",
        set: ["deploy/host=127.0.0.1", `deploy/port=${port}`],
      }),
    ).rejects.toThrow(
      "image/username: required with --registry-token (set it in pipeline.yaml or pass --set image/username=NAME)",
    );
  });

  it("reads the compose template and each of deploy/files from --source, by its own path, before connecting", async () => {
    const port = await freePort(); // nothing listens there: the deploy stops at connect, after the door's reads
    const err = await inSession((m) => m.deploy(SHA, key("secret-real-ssh-key")), {
      config: "files.yaml",
      set: ["deploy/host=127.0.0.1", `deploy/port=${port}`],
    }).then(
      () => undefined,
      (e: Error) => e,
    );
    expect(err?.message).toMatch(/127\.0\.0\.1/);
    const reads = standIn.queries
      .map((q) => /file \(path: "([^"]+)"\) \{ contents/.exec(q)?.[1])
      .filter((p): p is string => p !== undefined);
    expect(reads).toEqual(["files.yaml", "deploy/docker-compose.prod.yml", "nginx-docker.conf", "conf/tunnel.yml"]);
  });

  it("deploy/host `local` is refused: a function runs inside the engine's container, not on the server", async () => {
    for (const call of [
      (m: Hamalog): Promise<unknown> => m.deploy(SHA, key("secret-real-ssh-key")),
      (m: Hamalog): Promise<unknown> => m.status(key("secret-real-ssh-key")),
    ])
      await expect(inSession(call, { config: "pipeline.yaml", set: ["deploy/host=local"] })).rejects.toThrow(
        /deploy\/host: `local` deploys on the machine that runs the command, and a Dagger function runs inside the engine's container — run `npx hamalog deploy` on the server itself/,
      );
  });

  it("an empty --recreate-accessory is refused before any connection", async () => {
    const port = await freePort();
    await expect(
      inSession(
        (m) =>
          m.deploy(
            SHA,
            key("secret-real-ssh-key"),
            undefined,
            undefined,
            undefined,
            undefined,
            false,
            0,
            false,
            false,
            [" "],
          ),
        {
          config: "pipeline.yaml",
          set: ["deploy/host=127.0.0.1", `deploy/port=${port}`],
        },
      ),
    ).rejects.toThrow("--recreate-accessory: empty — give a compose service name, e.g. redis");
  });

  it("--set takes config paths and refuses the old flag-name keys", async () => {
    const status = (set: string[]) =>
      inSession((m) => m.status(key("secret-ssh-key")), { config: "pipeline.yaml", set });
    await expect(status(["deploy/host=bad host"])).rejects.toThrow(/^deploy\/host: must be a host name/);
    await expect(status(["host=127.0.0.1"])).rejects.toThrow(
      /^--set: `host=127\.0\.0\.1` must be PATH=VALUE .*use `deploy\/host=…`/,
    );
  });
});

describe("--set as the dagger CLI hands it over (it reads each value as CSV)", () => {
  /** The build a module instance makes with the --set flags as typed (each value as the shell passes it). */
  const built = (flags: string[]) =>
    inSession(async (m) => standIn.container(await (await m.build(SHA)).id())!, { set: stringSliceFlag("set", flags) });

  it("a pair quoted inside the argument keeps its comma", async () => {
    const state = await built(['"build/buildArgs=SPRING_PROFILES=prod,metrics"', "build/dockerfile=Dockerfile.ci"]);
    expect(state.build?.buildArgs).toEqual([{ name: "SPRING_PROFILES", value: "prod,metrics" }]);
    expect(state.build?.dockerfile).toBe("Dockerfile.ci");
  });

  it("an unquoted comma splits the pair: refused, naming the split and the quoting that keeps the comma", async () => {
    await expect(built(["build/buildArgs=SPRING_PROFILES=prod,metrics"])).rejects.toThrow(
      "--set: `build/buildArgs=SPRING_PROFILES=prod` and `metrics` arrived as two entries — the dagger CLI splits a " +
        "--set value at commas (it reads each --set as CSV). To keep the comma, quote the whole pair inside the " +
        `argument: --set '"build/buildArgs=SPRING_PROFILES=prod,metrics"'`,
    );
    await expect(built(["deploy/health/url=http://127.0.0.1:8080/health?a=1,b=2"])).rejects.toThrow(
      /`deploy\/health\/url=http:\/\/127\.0\.0\.1:8080\/health\?a=1` and `b=2` arrived as two entries/,
    );
    expect(standIn.queries.filter((q) => q.includes("dockerBuild"))).toEqual([]);
  });

  it("a value that is not PATH=VALUE on its own is not taken for a split", async () => {
    await expect(built(["nonsense"])).rejects.toThrow(/^--set: `nonsense` must be PATH=VALUE with a config path/);
  });
});

describe("the checks `dagger check` runs", () => {
  const SOURCE = { config: "pipeline.yaml" };

  it("config-valid: the config with --set, the image and every deploy field", async () => {
    expect(await inSession((m) => m.configValid(), SOURCE)).toBe(
      "pipeline.yaml: valid — image ghcr.io/daemin-kim/hamalog-backend; deploys to hamalog.example.com (/opt/hamalog, service hamalog-app, strategy blue-green)",
    );
    expect(await inSession((m) => m.configValid())).toBe(
      "single.yaml: valid — image ghcr.io/daemin-kim/hamalog-backend; no deploy/host, so no deploy is configured",
    );
    await expect(inSession((m) => m.configValid(), { set: ["deploy/host=203.0.113.7"] })).rejects.toThrow(
      /^deploy\/user: required \(set it in single\.yaml or pass `dagger call --set deploy\/user=VALUE …`\)/,
    );
    await expect(inSession((m) => m.configValid(), { set: ["deploy/strategy=canary"] })).rejects.toThrow(
      /^deploy\/strategy: Invalid option: expected one of "recreate"\|"blue-green"/,
    );
  });

  it("tag-policy: <sha> and latest on the config's default branch, <sha> alone elsewhere", async () => {
    expect(await inSession((m) => m.tagPolicy(), SOURCE)).toBe(
      "tag policy holds for ghcr.io/daemin-kim/hamalog-backend: main → <sha>, latest; other branches (e.g. feature/check) → <sha>",
    );
    expect(await inSession((m) => m.tagPolicy(), { set: ["defaultBranch=refs/heads/develop"] })).toMatch(
      /: develop → <sha>, latest; other branches/,
    );
    await expect(inSession((m) => m.tagPolicy(), { set: ["image/repository=Not A Repo"] })).rejects.toThrow(
      /^image\/repository: /,
    );
  });

  it("compose-renders: the template with its app service pinned to a digest, as ship renders it", async () => {
    expect(await inSession((m) => m.composeRenders(), SOURCE)).toBe(
      "deploy/docker-compose.prod.yml renders: service hamalog-app pinned to ghcr.io/daemin-kim/hamalog-backend:0123456789abcdef0123456789abcdef01234567@sha256:…",
    );
    await expect(inSession((m) => m.composeRenders(), { dir: "dir-bad-template", ...SOURCE })).rejects.toThrow(
      /hamalog-app/,
    );
    expect(await inSession((m) => m.composeRenders())).toBe(
      "single.yaml sets neither deploy/composeFile nor deploy/services: no compose file to render",
    );
    await expect(
      inSession((m) => m.composeRenders(), { ...SOURCE, set: ["deploy/composeFile=deploy/missing.yml"] }),
    ).rejects.toThrow(
      "deploy/composeFile: deploy/missing.yml is not in the source directory — the compose template lives with the app, next to pipeline.yaml: run the check there, or pass --source=DIR (a directory that holds both)",
    );
  });
});

describe("the stand-in is honest", () => {
  it("fails loudly on a field it does not answer", async () => {
    await expect(inSession(async () => dag.container().from("alpine").withUser("app").id())).rejects.toThrow(
      /Container\.withUser is not something this stand-in answers/,
    );
    expect(standIn.unexpected).toEqual([expect.stringMatching(/Container\.withUser/)]);
    standIn.unexpected.length = 0; // expected here; afterEach checks the rest
  });
});

describe("a refused push through the Dagger door", () => {
  const refusing = new DaggerStandIn({
    secrets: { "secret-registry-token": TOKEN_PLAINTEXT },
    directories: ["dir-source"],
    directoryFiles: { "dir-source": { "pipeline.yaml": SINGLE_PLATFORM_YAML } },
    onPublish: (call) => {
      throw new EngineError(
        `failed to export: failed to push ${call.address}: denied: permission_denied: write_package`,
      );
    },
  });
  beforeAll(() => refusing.start());
  afterAll(() => refusing.stop());

  it("GHCR's write_package denial is explained: link the package to the repository (Manage Actions access)", async () => {
    const err = await refusing
      .session(() => new Hamalog(dag.loadDirectoryFromID("dir-source" as DirectoryID)).push(SHA, "main", token()))
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(err?.message).toMatch(/push of ghcr\.io\/daemin-kim\/hamalog-backend:453a6545\S* refused/);
    expect(err?.message).toMatch(/Manage Actions access → Add repository/);
    expect(refusing.unexpected).toEqual([]);
    expect(refusing.publishes).toEqual([]); // the first reference was refused; nothing else was tried
  });
});

describe("composition: another module passes its own source (test/fixtures/caller-module)", () => {
  const FIXTURE = join(ROOT, "test/fixtures/caller-module");
  const CALLER_YAML = readFileSync(join(FIXTURE, "pipeline.yaml"), "utf8");
  const composed = new DaggerStandIn({
    secrets: { "secret-registry-token": TOKEN_PLAINTEXT },
    directories: ["dir-caller", "dir-caller-without-config"],
    directoryFiles: {
      "dir-caller": { "pipeline.yaml": CALLER_YAML },
      "dir-caller-without-config": { Dockerfile: "FROM scratch\n" },
    },
  });
  const caller = (dir: string) => new Hamalog(dag.loadDirectoryFromID(dir as DirectoryID));
  beforeAll(() => composed.start());
  afterAll(() => composed.stop());
  afterEach(() => {
    expect(composed.unexpected).toEqual([]);
    for (const list of [composed.queries, composed.publishes, composed.filters, composed.unexpected]) list.length = 0;
  });

  it("the fixture depends on this module and hands it its own directory; its functions chain the typed results", () => {
    const dj = JSON.parse(readFileSync(join(FIXTURE, "dagger.json"), "utf8"));
    expect(dj.dependencies).toEqual([{ name: "hamalog", source: "../../.." }]);
    expect(join(FIXTURE, dj.dependencies[0].source)).toBe(join(ROOT, "."));
    const src = readFileSync(join(FIXTURE, "src/index.ts"), "utf8");
    expect(src).toContain(`dag.hamalog({ source }).ship(sha, "main", token, sshKey).summary()`);
    const fixture = introspect("test/fixtures/caller-module/src", "caller").objects.Caller!;
    expect(Object.keys(fixture.methods)).toEqual(["release", "digest", "plan"]);
    // "." is the caller module's own directory; "/" would be the root of the repository it sits in (this one).
    expect(fixture.methods.release!.arguments.source!.defaultPath).toBe(".");
    expect(fixture.methods.release!.returnType.kind).toBe("STRING_KIND");
  });

  it("dag.hamalog({ source }) reads the CALLER's pipeline.yaml: the caller's image and user, never Hamalog's", async () => {
    const out = await composed.session(() => caller("dir-caller").push(SHA, "main", token()));
    expect(composed.publishes.map((p) => p.address)).toEqual([
      `registry.caller.example/caller/app:${SHA}`,
      "registry.caller.example/caller/app:latest",
    ]);
    for (const p of composed.publishes) {
      expect(p.container.auth).toEqual([
        { address: "registry.caller.example", username: "caller-bot", secret: "secret-registry-token" },
      ]);
      expect(p.container.build?.directory).toBe("dir-caller");
    }
    expect(out).toHaveLength(2);
    expect(composed.queries.join("\n")).not.toContain("hamalog-backend");
  });

  it("the ignore list is applied to a passed Directory too (defaultPath's ignore does not reach it)", async () => {
    await composed.session(() => caller("dir-caller").build(SHA));
    expect(composed.filters.length).toBeGreaterThan(0);
    for (const f of composed.filters) expect(f).toEqual({ directory: "dir-caller", exclude: BUILD_CONTEXT_IGNORE });
  });

  it("a source without pipeline.yaml is a clear error naming the fix, not Hamalog's defaults; nothing published", async () => {
    await expect(
      composed.session(() => caller("dir-caller-without-config").push(SHA, "main", token())),
    ).rejects.toThrow(
      /--config pipeline\.yaml: no such file in the source directory\. .*never from Hamalog's own repository: add pipeline\.yaml at the root of the directory passed as --source/,
    );
    expect(composed.publishes).toEqual([]);
    expect(composed.queries.filter((q) => /\bcontents\b/.test(q))).toEqual([]);
  });
});
