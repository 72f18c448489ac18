// Trust by default, against real sshd: `hamalog host-key` prints what ssh-keyscan + ssh-keygen -l print; an
// impostor sshd (another host key on the address the config names) receives no login and no registry token;
// without a pin nothing connects at all; the example config's placeholder stops a deploy naming the fix.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hamalog } from "../helpers/cli.js";
import { freePort } from "./helpers/ports.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";
import { composeTemplate, pipelineYaml } from "./helpers/stack-files.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const TOKEN = "hamalog-impostor-canary-token-5b1f";

let genuine: Sshd;
let impostor: Sshd;
let tmp: string;

const log = (s: Sshd) => readFileSync(join(s.dir, "sshd.log"), "utf8");

/** A pipeline.yaml whose deploy/port is `port`, pinned to `hostKeyFingerprint` (or unpinned when undefined). */
async function config(name: string, port: number, hostKeyFingerprint: string | undefined): Promise<string> {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "compose.yml"), composeTemplate({ appPort: await freePort() }));
  let text = pipelineYaml({
    registry: `127.0.0.1:${await freePort()}`, // never reached: every case here stops at connect
    repository: "acme/trust",
    username: "ci",
    sshd: { port, user: genuine.user, hostKeyFingerprint: hostKeyFingerprint ?? "DROP" },
    directory: join(dir, "deploy"),
    composeFile: "compose.yml",
    project: `hamalog-trust-${name}`,
    health: { url: "http://127.0.0.1:1/health" },
  });
  if (hostKeyFingerprint === undefined) text = text.replace(/^ {2}hostKey: DROP\n/m, "");
  writeFileSync(join(dir, "pipeline.yaml"), text);
  return join(dir, "pipeline.yaml");
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hamalog-trust-"));
  [genuine, impostor] = await Promise.all([startSshd(), startSshd({ logLevel: "VERBOSE" })]);
  // The impostor lets the genuine client key in: had the client authenticated, it would have run everything.
  writeFileSync(join(impostor.dir, "authorized_keys"), readFileSync(`${genuine.keyFile}.pub`));
});

afterAll(async () => {
  await Promise.all([genuine?.stop(), impostor?.stop()]);
  rmSync(tmp, { recursive: true, force: true });
});

describe("hamalog host-key", () => {
  it("prints the line ssh-keyscan | ssh-keygen -lf - prints, and how to pin it", async () => {
    const scanned = execFileSync("ssh-keyscan", ["-p", String(genuine.port), "-t", "ed25519", "127.0.0.1"], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const expected = execFileSync("ssh-keygen", ["-lf", "-"], { input: scanned, encoding: "utf8" }).trim();
    const r = await hamalog(["host-key", "--host", "127.0.0.1", "--port", String(genuine.port)]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(expected);
    expect(r.stdout).toContain(genuine.hostKeyFingerprint);
    expect(r.stderr).toContain(`hostKey: ${genuine.hostKeyFingerprint}`);
  });

  it("a port where nothing listens is exit 1 naming the host; a bad port is exit 2", async () => {
    const closed = await freePort();
    const r = await hamalog(["host-key", "--host", "127.0.0.1", "--port", String(closed)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot read the host key of [127.0.0.1]:${closed} (ECONNREFUSED)`);
    expect((await hamalog(["host-key", "--host", "127.0.0.1", "--port", "70000"])).code).toBe(2);
    expect((await hamalog(["host-key"])).code).toBe(2);
  });
});

describe("an impostor sshd", () => {
  it("with the genuine host's pin, the impostor is refused before any login: no session, no token", async () => {
    const cfg = await config("pinned", impostor.port, genuine.hostKeyFingerprint);
    const r = await hamalog(
      ["deploy", "--sha", SHA, "--config", cfg, "--ssh-key-file", genuine.keyFile, "--password-env", "TRUST_TOKEN"],
      { env: { TRUST_TOKEN: TOKEN } },
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(
      `its host key is ${impostor.hostKeyFingerprint}, but ${genuine.hostKeyFingerprint} is pinned`,
    );
    expect(log(impostor)).toMatch(/Connection from 127\.0\.0\.1/); // it was reached…
    expect(log(impostor)).not.toMatch(/Accepted publickey/); // …but nobody logged in, so nothing ran there
    const deployDir = join(tmp, "pinned", "deploy");
    expect(() => readdirSync(deployDir)).toThrow(/ENOENT/); // not even the deploy directory was made
    expect(r.stdout + r.stderr).not.toContain(TOKEN);
  });

  it("without a pin nothing connects at all (exit 2), even to the impostor", async () => {
    const before = (log(impostor).match(/Connection from/g) ?? []).length;
    const cfg = await config("unpinned", impostor.port, undefined);
    const r = await hamalog(
      ["deploy", "--sha", SHA, "--config", cfg, "--ssh-key-file", genuine.keyFile, "--password-env", "TRUST_TOKEN"],
      { env: { TRUST_TOKEN: TOKEN } },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("deploy/hostKey: required — no host key is pinned");
    expect((log(impostor).match(/Connection from/g) ?? []).length).toBe(before);
    expect(log(impostor)).not.toMatch(/Accepted publickey/);
  });

  it("the example config's CHANGE-ME placeholder stops a deploy with the way to pin", async () => {
    const cfg = await config("placeholder", genuine.port, "CHANGE-ME");
    const r = await hamalog(["deploy", "--sha", SHA, "--config", cfg, "--ssh-key-file", genuine.keyFile]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/deploy\/hostKey: still the placeholder CHANGE-ME in .*pipeline\.yaml — /);
    expect(r.stderr).toContain(`npx hamalog host-key --host 127.0.0.1 --port ${genuine.port}`);
  });
});
