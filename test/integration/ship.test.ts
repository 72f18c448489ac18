// `ship` end to end through the Dagger door, against real components everywhere except the engine: the module
// class runs on the real @dagger.io/dagger client, whose session endpoint is the stand-in
// (test/helpers/dagger-stand-in.ts); the stand-in's `publish` really pushes a busybox test image to a real,
// htpasswd-protected registry with the password behind the container's registry-auth Secret. verify-manifest
// then asks that registry, and the deploy goes over real SSH to this machine's dockerd + compose v2.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dag, type DirectoryID, type SecretID } from "@dagger.io/dagger";
import { Hamalog } from "../../ci/src/index.js";
import { DeployResult, type Shipment } from "../../ci/src/results.js";
import { DaggerStandIn, type PublishCall } from "../helpers/dagger-stand-in.js";
import { buildAppImage, projectContainers, removeComposeProject, removeImages } from "./helpers/images.js";
import { freePort } from "./helpers/ports.js";
import { loginAndPush, startRegistry, type Registry } from "./helpers/registry.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const ID = `hamalog-ship-it-${process.pid}`;
const REPO = "hamalog-ship-it/app";
const SHA1 = "5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";
const SHA2 = "6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f";
const USER = "shipper";
const TOKEN = "tok-ship-Q7#not-in-any-query";

let registry: Registry;
let sshd: Sshd;
let tmp: string;
let dir: string;
let appPort: number;
let standIn: DaggerStandIn;
/** Which local image the "engine" pushes for a given Dockerfile, and what else to do after the push. */
let images: Record<string, string>;
let afterPush: ((address: string) => void) | undefined;
const pushed: string[] = [];

const containers = () => projectContainers(ID);
const composeFile = () =>
  existsSync(join(dir, "compose.yaml")) ? readFileSync(join(dir, "compose.yaml"), "utf8") : "";
async function version(): Promise<string> {
  return (await (await fetch(`http://127.0.0.1:${appPort}/version`)).text()).trim();
}

/** The stand-in's publish: push the image this Dockerfile "builds", authenticated with the Secret named in the container's registry auth. */
function publish(call: Omit<PublishCall, "answer">, plaintext: (id: string) => string): string {
  const auth = call.container.auth.at(-1);
  if (!auth) throw new Error("publish without registry auth");
  const local = images[call.container.build?.dockerfile ?? "Dockerfile"]!;
  const digest = loginAndPush(local, auth.address, call.address, auth.username, plaintext(auth.secret));
  pushed.push(call.address);
  afterPush?.(call.address);
  return `${call.address}@${digest}`;
}

beforeAll(async () => {
  [registry, sshd] = await Promise.all([startRegistry({ auth: { htpasswd: { [USER]: TOKEN } } }), startSshd()]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-ship-it-"));
  dir = join(tmp, "srv", "app");
  appPort = await freePort();
  images = { "v1.Dockerfile": `${ID}/app:v1`, "v2.Dockerfile": `${ID}/app:v2` };
  buildAppImage(images["v1.Dockerfile"]!, { version: "v1" });
  buildAppImage(images["v2.Dockerfile"]!, { version: "v2" });
  const pipeline = pipelineYaml({
    registry: registry.host,
    repository: REPO,
    username: USER,
    source: "https://github.com/daemin-kim/hamalog-backend",
    sections: ["build:", "  dockerfile: v1.Dockerfile"],
    sshd,
    directory: dir,
    composeFile: "deploy/compose.yml",
    project: ID,
    health: { url: `http://127.0.0.1:${appPort}/health` },
    fallback: "latest", // ship must ignore this: it deploys what it pushed or nothing
  });
  const compose = composeTemplate({ appPort });
  standIn = new DaggerStandIn({
    secrets: { "secret-token": TOKEN, "secret-ssh-key": readFileSync(sshd.keyFile, "utf8").trim() },
    directories: ["dir-source"],
    directoryFiles: { "dir-source": { "pipeline.yaml": pipeline, "deploy/compose.yml": compose } },
    onPublish: publish,
  });
  await standIn.start();
});

afterAll(async () => {
  await standIn?.stop();
  removeComposeProject(ID);
  removeImages(REPO, Object.values(images ?? {}));
  await Promise.all([registry?.stop(), sshd?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

/** ship as a caller module runs it: dag.hamalog({ source }) with its own pipeline.yaml, then the typed result. */
function shipment(sha: string, dockerfile?: string): Promise<Shipment> {
  const set = dockerfile ? [`build/dockerfile=${dockerfile}`] : [];
  return standIn.session(() =>
    new Hamalog(dag.loadDirectoryFromID("dir-source" as DirectoryID), "pipeline.yaml", set).ship(
      sha,
      "main",
      dag.loadSecretFromID("secret-token" as SecretID),
      dag.loadSecretFromID("secret-ssh-key" as SecretID),
    ),
  );
}

/** The shipment as the log `dagger call ship deployment log` prints, with the published and verified lines. */
async function ship(sha: string, dockerfile?: string): Promise<string> {
  const s = await shipment(sha, dockerfile);
  return [
    ...s.published.map((r) => `published ${r}`),
    `verified  ${s.verified.reference}`,
    `deployed  ${s.deployment.reference} on ${s.deployment.host}`,
    ...s.deployment.log,
  ].join("\n");
}

describe("ship through the Dagger door, real registry + SSH + compose", () => {
  it("builds, pushes exactly <sha> and latest, verifies the digest and deploys it; no secret in any query", async () => {
    const result = await shipment(SHA1);
    // The typed result a caller chains: ship(...).verified().digest() is the digest the host runs.
    expect(result.verified.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(result.deployment.digest).toBe(result.verified.digest);
    expect(result.deployment.sha).toBe(SHA1);
    expect(result.deployment.result).toBe(DeployResult.SUCCESS);
    expect(result.deployment.fallbackUsed).toBe(false);
    expect(result.deployment.rolledBackTo).toBe("");
    expect(result.verified.reference).toBe(`${registry.host}/${REPO}:${SHA1}@${result.verified.digest}`);
    expect(result.published).toEqual([
      `${registry.host}/${REPO}:${SHA1}@${result.verified.digest}`,
      `${registry.host}/${REPO}:latest@${result.verified.digest}`,
    ]);
    const out = [
      ...result.published.map((r) => `published ${r}`),
      `deployed  ${result.deployment.reference}`,
      ...result.deployment.log,
    ].join("\n");
    expect(pushed).toEqual([`${registry.host}/${REPO}:${SHA1}`, `${registry.host}/${REPO}:latest`]);
    const digest = /published \S+:[0-9a-f]{40}@(sha256:[0-9a-f]{64})/.exec(out)?.[1];
    expect(digest, out).toBeDefined();
    expect(out).toContain(`deployed  ${registry.host}/${REPO}:${SHA1}@${digest}`);
    expect(out).toMatch(/\[ship\] build[\s\S]*\[ship\] push[\s\S]*\[ship\] verify-manifest[\s\S]*\[ship\] deploy/);
    expect(composeFile()).toContain(`image: ${registry.host}/${REPO}:${SHA1}@${digest}`);
    expect(await version()).toBe("v1");
    expect(standIn.unexpected).toEqual([]);
    for (const q of standIn.queries) {
      expect(q).not.toContain(TOKEN);
      expect(q).not.toContain("PRIVATE KEY");
    }
    expect(out).not.toContain(TOKEN);
    expect(standIn.plaintextReads).toEqual(expect.arrayContaining(["secret-token", "secret-ssh-key"]));
    // What `dagger call ship … summary` prints: what was published, what the registry proved, what runs now.
    expect(result.summary.split("\n").slice(0, 5)).toEqual([
      `shipped sha ${SHA1} (main) to 127.0.0.1`,
      "published:",
      `  ${result.published[0]}`,
      `  ${result.published[1]}`,
      `verified: ${result.verified.reference} (the registry serves ${result.verified.digest})`,
    ]);
    expect(result.summary).toContain(result.deployment.summary);
    expect(result.deployment.summary).toMatch(
      new RegExp(`^deploy succeeded on 127\\.0\\.0\\.1 in [\\d.]+s \\(strategy recreate\\): it runs sha ${SHA1}\\n`),
    );
    expect(result.deployment.summary).toContain(`  digest    ${result.verified.digest}`);
    expect(result.summary).not.toContain(TOKEN);
  });

  it("refuses to deploy when the sha tag moves between push and verify, naming verify-manifest", async () => {
    pushed.length = 0;
    // Someone else pushes v1 over the sha tag right after our push of v2.
    afterPush = (address) => {
      if (address.endsWith(`:${SHA2}`)) loginAndPush(images["v1.Dockerfile"]!, registry.host, address, USER, TOKEN);
    };
    try {
      const err = await ship(SHA2, "v2.Dockerfile").then(
        () => undefined,
        (e: Error) => e,
      );
      expect(err?.message).toMatch(
        /ship failed in phase `verify-manifest`: pushed sha256:[0-9a-f]{64} but the registry answers sha256:[0-9a-f]{64}/,
      );
      expect(err?.message).toContain("not run: deploy");
    } finally {
      afterPush = undefined;
    }
    // The host still runs v1 from the first ship.
    expect(await version()).toBe("v1");
    expect(composeFile()).toContain(`:${SHA1}@`);
  });
});
