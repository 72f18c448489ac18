// deploy / rollback / status on both doors: the Dagger signatures (read by the SDK's own introspector) and the
// CLI contract for usage errors (exit 2, nothing attempted).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hamalog } from "../helpers/cli.js";
import { introspect } from "../helpers/introspect.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const BASE = [
  "--repository",
  "acme/app",
  "--host",
  "127.0.0.1",
  "--user",
  "root",
  "--directory",
  "/tmp/hamalog-unit-nowhere",
  "--service",
  "app",
  "--compose-file",
  "compose.yml",
];

describe("Dagger deploy / rollback / status", () => {
  const m = introspect().objects.Hamalog!.methods;

  it.each([
    ["deploy", "Deployment"],
    ["rollback", "Deployment"],
    ["status", "Status"],
  ])(
    "%s takes the SSH key as a Secret, reads the config and compose template from the constructor's source, returns a %s",
    (name, result) => {
      const fn = m[name]!;
      expect(fn.arguments.sshKey!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
      expect(fn.arguments.source).toBeUndefined();
      expect(fn.arguments.config).toBeUndefined();
      expect(fn.arguments.configPath).toBeUndefined();
      expect(fn.returnType).toEqual({ kind: "OBJECT_KIND", name: result });
    },
  );

  it("deploy takes the sha first and an optional registry token Secret", () => {
    const fn = m.deploy!;
    expect(Object.keys(fn.arguments).slice(0, 2)).toEqual(["sha", "sshKey"]);
    expect(fn.arguments.registryToken!.type).toEqual({ kind: "OBJECT_KIND", name: "Secret" });
    expect(fn.arguments.registryToken!.isOptional).toBe(true);
    expect(fn.arguments.to).toBeUndefined();
    expect(m.rollback!.arguments.to!.isOptional).toBe(true);
  });
});

describe("hamalog deploy / rollback / status (CLI usage errors)", () => {
  // An empty working directory: no ./pipeline.yaml is picked up, flags carry the whole config.
  const cwd = mkdtempSync(join(tmpdir(), "hamalog-deploy-door-"));
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(cwd, "key")]);
  const KEY = readFileSync(join(cwd, "key"), "utf8");
  afterAll(() => rmSync(cwd, { recursive: true, force: true }));

  it("are listed in the main help", async () => {
    const r = await hamalog(["--help"]);
    expect(r.stdout).toMatch(/^ {2}deploy /m);
    expect(r.stdout).toMatch(/^ {2}status /m);
    expect(r.stdout).toMatch(/^ {2}rollback /m);
  });

  it("deploy --help names the flags", async () => {
    const r = await hamalog(["deploy", "--help"]);
    expect(r.code).toBe(0);
    for (const f of [
      "--sha SHA",
      "--ssh-key-file FILE",
      "--ssh-key-env VAR",
      "--password-env VAR",
      "--dry-run",
      "--lock-wait SECONDS",
      "--break-lock",
      "--host-key",
      "--insecure-accept-host-key",
    ]) {
      expect(r.stdout).toContain(f);
    }
    // One flag per config field, with the schema's default where it has one.
    expect(r.stdout).toMatch(/^ {2}--port PORT +SSH port \(default 22\)$/m);
    expect(r.stdout).toMatch(/^ {2}--health-url HEALTH_URL +HTTP health URL, checked on the host$/m);
    expect(r.stdout).toMatch(/^ {2}--build-arg BUILD_ARG \(repeatable\) +KEY=VALUE build argument$/m);
  });

  it("exit 2 without an SSH key, naming both ways to give one", async () => {
    const r = await hamalog(["deploy", "--sha", SHA, ...BASE], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--ssh-key-file or --ssh-key-env: required — the private key whose public key is in the host's authorized_keys \(or deploy\/host: local/,
    );
  });

  it("exit 2 for a key that is not a key, without echoing it", async () => {
    const r = await hamalog(["status", ...BASE, "--ssh-key-env", "K"], { env: { K: "not-a-key-secret-value" }, cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--ssh-key-env: not a usable SSH private key/);
    expect(r.stderr).not.toContain("not-a-key-secret-value");
  });

  it("exit 2 for a public key given as the private key, naming the file to give instead", async () => {
    const r = await hamalog(["status", ...BASE, "--ssh-key-file", join(cwd, "key.pub")], { cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--ssh-key-file: this is a public key \(ssh-ed25519\); give the private key — the file without \.pub/,
    );
  });

  it("exit 2 without a pinned host key, before any connection, naming host-key and the escape hatch", async () => {
    const r = await hamalog(["status", ...BASE, "--ssh-key-env", "K"], { env: { K: KEY }, cwd });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("deploy/hostKey: required — no host key is pinned for 127.0.0.1");
    expect(r.stderr).toContain("npx hamalog host-key --host 127.0.0.1");
    expect(r.stderr).toContain("--insecure-accept-host-key");
  });

  it.each([
    ["an absolute path", "/etc/hostname", /deploy\/compose(File|-file).*must be relative to the config file/],
    ["a symlink out of the config's directory", "link.yml", /deploy\/composeFile: link\.yml leads out of/],
  ])("exit 2 for --compose-file as %s: the template is confined beside the config", async (_, file, re) => {
    symlinkSync("/etc/hostname", join(cwd, "link.yml"));
    try {
      const pin = ["--host-key", `SHA256:${"x".repeat(43)}`];
      const r = await hamalog(["status", ...BASE, ...pin, "--compose-file", file, "--ssh-key-env", "K"], {
        env: { K: KEY },
        cwd,
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(re);
    } finally {
      rmSync(join(cwd, "link.yml"));
    }
  });

  it("exit 2 listing every missing deploy field at once", async () => {
    const r = await hamalog(["deploy", "--sha", SHA, "--repository", "acme/app", "--ssh-key-env", "K"], {
      env: { K: KEY },
      cwd,
    });
    expect(r.code).toBe(2);
    for (const f of ["deploy/host", "deploy/user", "deploy/directory", "deploy/service"])
      expect(r.stderr).toContain(`${f}: required`);
  });

  it("exit 2 for a registry token without a username", async () => {
    const r = await hamalog(["deploy", "--sha", SHA, ...BASE, "--password-env", "T", "--ssh-key-env", "K"], {
      env: { T: "tok", K: KEY },
      cwd,
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/image\/username: required with --password-env/);
  });
});
