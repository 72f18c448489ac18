// Errors leave the deploy core redacted, like printed lines: the CLI prints `err.message` as it is and Dagger
// returns it, so a registry token or (a line of) the SSH key inside a failure's text must be gone by then. The
// environment is the doors' real one (liveEnv: its secrets list), with the transport swapped for one that fails.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import { liveEnv } from "../../ci/core/deploy/door.js";
import type { Remote } from "../../ci/core/deploy/remote.js";
import { deploy, rollback, type DeployEnv, type DeployInput } from "../../ci/core/deploy/run.js";
import { status } from "../../ci/core/deploy/status.js";
import { PipelineError } from "../../ci/core/errors.js";
import { parseSha } from "../../ci/core/tags.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-redact-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(tmp, "key")]);
const KEY = readFileSync(join(tmp, "key"), "utf8");
const KEY_LINE = KEY.split("\n")[2]!;
const TOKEN = "tok-redact-7Qz!secret";
const SHA = parseSha("453a6545b97fe240727c378291230abeb793d851");

const deployConfig = requireDeploy(
  parseConfig(
    "image:\n  repository: acme/app\ndeploy:\n  host: 127.0.0.1\n  user: root\n  directory: /tmp/hamalog-redact-nowhere\n  service: app\n  composeFile: c.yml\n",
  ),
);
const input: DeployInput = {
  image: { registry: "ghcr.io", repository: "acme/app" },
  deploy: deployConfig,
  compose: { services: { app: {} } },
  credentials: { username: "u", password: TOKEN },
  holder: "unit",
};
const printed: string[] = [];
const real = liveEnv(
  deployConfig,
  { sshKey: KEY, registryToken: TOKEN },
  { out: (l) => printed.push(l), warn: (l) => printed.push(l) },
);

/** A host that probes fine and runs nothing (so preflight reaches verify, which fails echoing the secrets). */
const quietHost: Remote = {
  label: "root@127.0.0.1:22",
  hostKeyFingerprint: "SHA256:x",
  run: async () => ({
    code: 0,
    stdout:
      "hamalog-section platform\nlinux/x86_64\nhamalog-section compose\nDocker Compose version v2.26.1\nhamalog-section tools\n",
    stderr: "",
  }),
  httpGet: () => Promise.reject(new Error("unused")),
  close: () => undefined,
};

async function failure(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error("expected a failure");
    },
    (e: Error) => e,
  );
}

function expectRedacted(e: Error, phase: string): void {
  expect(e).toBeInstanceOf(PipelineError);
  expect((e as PipelineError).phase).toBe(phase);
  expect((e as PipelineError).exitCode).toBe(1);
  expect(e.message).toContain("[redacted]");
  for (const text of [e.message, e.stack ?? ""]) {
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(KEY_LINE);
  }
}

describe("thrown deploy errors are redacted", () => {
  it("a connect failure naming the key and token comes out of deploy, rollback and status redacted, phase and exit code kept", async () => {
    const env: DeployEnv = {
      ...real,
      connect: () => Promise.reject(new PipelineError(`auth failed with ${KEY} and token ${TOKEN}`, "connect")),
    };
    expectRedacted(await failure(deploy({ ...input, sha: SHA }, env)), "connect");
    expectRedacted(await failure(rollback(input, env)), "connect");
    expectRedacted(await failure(status(input, env)), "connect");
  });

  it("a preflight failure whose cause echoes the token and one line of the key comes out redacted", async () => {
    const env: DeployEnv = {
      ...real,
      connect: async () => quietHost,
      verify: () => Promise.reject(new Error(`registry said: bad credentials "u:${TOKEN}" near ${KEY_LINE}`)),
    };
    const e = await failure(deploy({ ...input, sha: SHA }, env));
    expectRedacted(e, "preflight");
    expect(e.message).toMatch(/^registry said: bad credentials "u:\[redacted\]" near \[redacted\]/);
    expect(printed.join("\n")).not.toContain(TOKEN);
    expect(printed.join("\n")).not.toContain(KEY_LINE);
  });
});
