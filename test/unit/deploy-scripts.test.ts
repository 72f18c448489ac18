// The phase scripts (ci/core/deploy/commands.ts) through shell.ts and a real `sh -c`, as sshd runs them, with a
// stand-in `docker` first on PATH that logs its argv and DOCKER_CONFIG and fails when told to: a failure names the
// step that failed with that step's own exit code and stderr, later steps do not run, and only the registry
// commands see the deploy's DOCKER_CONFIG.
import { spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { cmd, IMAGE_PRESENT, lastStep, layout } from "../../ci/core/deploy/commands.js";
import { shellCommand } from "../../ci/core/deploy/shell.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-scripts-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const bin = join(tmp, "bin");
const log = join(tmp, "docker.log");
mkdirSync(bin);
// FAIL_ON: a word; the stand-in exits 15 when its argv contains it.
writeFileSync(
  join(bin, "docker"),
  `#!/bin/sh\necho "DOCKER_CONFIG=\${DOCKER_CONFIG:-unset} $*" >> "${log}"\ncase " $* " in *" $FAIL_ON "*) echo "docker: $FAIL_ON refused" >&2; exit 15;; esac\nexit 0\n`,
);
chmodSync(join(bin, "docker"), 0o755);

function run(argv: string[], failOn = "-none-", stdin = "") {
  rmSync(log, { force: true });
  const r = spawnSync("sh", ["-c", shellCommand(argv)], {
    input: stdin,
    encoding: "utf8",
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}`, FAIL_ON: failOn },
  });
  const calls = existsSync(log) ? readFileSync(log, "utf8").trim().split("\n") : [];
  return { code: r.status, stdout: r.stdout, ...lastStep(r.stderr), calls };
}

describe("the probe's deploy-directory check (real sh, real files)", () => {
  const dir = join(tmp, "probe dir; $(x)");
  const file = (name: string) => join(dir, name);
  it.each([
    ["a 0700 directory with plain files", () => writeFileSync(file("compose.yaml"), "x"), 0, undefined],
    ["a group-writable directory", () => chmodSync(dir, 0o770), 6, "writable drwxrwx---"],
    ["an other-writable sticky directory", () => chmodSync(dir, 0o1777), 6, "writable drwxrwxrwt"],
    ["a symlinked compose.yaml", () => symlinkSync("/etc/hostname", file("compose.yaml")), 6, "symlink compose.yaml"],
    ["a symlinked dot-file", () => symlinkSync("/tmp", file(".docker")), 6, "symlink .docker"],
  ])("%s", (_, arrange, code, complaint) => {
    mkdirSync(dir, { mode: 0o700 });
    try {
      arrange();
      const r = run(cmd.probe(false, dir));
      expect(r.code).toBe(code);
      if (complaint) expect(r).toMatchObject({ step: "dir", stderr: `${complaint}\n` });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a directory that does not exist yet (a first deploy) passes", () => {
    expect(run(cmd.probe(false, join(tmp, "not-there"))).code).toBe(0);
  });
});

describe("phase scripts", () => {
  const l = layout(join(tmp, "srv it's; $(x)"));
  mkdirSync(l.dir);

  it("render's switch: a failing `compose config` is named with its own code, and nothing is kept or renamed", () => {
    writeFileSync(l.compose, "old\n");
    writeFileSync(l.next, "new\n");
    const r = run(cmd.switchCompose("p", l, true), "config");
    expect(r).toMatchObject({ code: 15, step: "config" });
    expect(r.stderr.trim()).toBe("docker: config refused");
    expect(r.calls).toEqual([`DOCKER_CONFIG=unset compose --project-name p --file ${l.next} config --quiet`]);
    expect(existsSync(l.previous)).toBe(false);
    expect(readFileSync(l.compose, "utf8")).toBe("old\n");
  });

  it("render's switch keeps the previous file and renames the next into place", () => {
    const r = run(cmd.switchCompose("p", l, true));
    expect(r).toMatchObject({ code: 0, step: "rename", stderr: "" });
    expect(readFileSync(l.previous, "utf8")).toBe("old\n");
    expect(readFileSync(l.compose, "utf8")).toBe("new\n");
    expect(existsSync(l.next)).toBe(false);
  });

  it("a failing rename is named as the rename", () => {
    const r = run(cmd.switchCompose("p", l, false)); // no .compose.next.yaml any more
    expect(r).toMatchObject({ step: "rename" });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/mv: .*compose\.next\.yaml/);
  });

  it("pull: a digest on the host is not pulled; a missing one is pulled under the deploy's DOCKER_CONFIG", () => {
    expect(run(cmd.pullMissing(l, "r/a@sha256:1"))).toMatchObject({
      code: 0,
      stdout: `${IMAGE_PRESENT}\n`,
      calls: ["DOCKER_CONFIG=unset image inspect r/a@sha256:1"],
    });
    const r = run(cmd.pullMissing(l, "r/a@sha256:1"), "inspect");
    expect(r.code).toBe(0);
    expect(r.calls).toEqual([
      "DOCKER_CONFIG=unset image inspect r/a@sha256:1",
      `DOCKER_CONFIG=${l.dockerConfig} pull --quiet r/a@sha256:1`,
    ]);
  });

  it("login: the token only on stdin, the config dir made first, login under it", () => {
    const r = run(cmd.login(l, "reg.example", "u"), "login", "s3cret\n");
    expect(r).toMatchObject({ code: 15, step: "login" });
    expect(existsSync(l.dockerConfig)).toBe(true);
    expect(r.calls).toEqual([`DOCKER_CONFIG=${l.dockerConfig} login --username u --password-stdin reg.example`]);
  });

  it("history: appends, then lists the history and the images; unlock logs out before releasing", () => {
    writeFileSync(l.history, "one\n");
    const r = run(cmd.appendAndList(l, "r/a"), "-none-", "two\n");
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("hamalog-history\none\ntwo\nhamalog-images\n");
    expect(r.calls).toEqual([
      "DOCKER_CONFIG=unset image ls --digests --format {{.Repository}}:{{.Tag}} {{.Digest}} {{.ID}} r/a",
    ]);
    expect(run(cmd.lockRelease(l, "x", "reg.example"))).toMatchObject({
      code: 4,
      calls: [`DOCKER_CONFIG=${l.dockerConfig} logout reg.example`],
    });
    expect(run(cmd.lockRelease(l, "x"))).toMatchObject({ code: 4, calls: [] });
  });

  it("prune removes what it can and prints what it removed", () => {
    const r = run(cmd.imagesRemove(["r/a@sha256:1", "r/a@sha256:rm"]), "r/a@sha256:rm");
    expect(r).toMatchObject({ code: 0, stdout: "r/a@sha256:1\n" });
  });
});

describe("the pull's stall watchdog (real sh and util-linux script, a stand-in docker)", () => {
  const pullBin = join(tmp, "pull-bin");
  mkdirSync(pullBin);
  // `docker image inspect`: not present; `docker pull`: print a progress line every 0.3 s for MOVE_S seconds, then
  // either finish (exit 0) or go silent for a minute (STALL=1), as a pull whose download stopped does.
  writeFileSync(
    join(pullBin, "docker"),
    '#!/bin/sh\n[ "$1" = image ] && exit 1\ni=0; while [ "$i" -lt "$MOVE_TENTHS" ]; do echo "Downloading $i"; sleep 0.3; i=$((i+3)); done\n' +
      '[ "$STALL" = 1 ] && sleep 60\necho "Digest: ok"; exit 0\n',
  );
  chmodSync(join(pullBin, "docker"), 0o755);
  const pull = (env: Record<string, string>) => {
    const started = Date.now();
    const r = spawnSync("sh", ["-c", shellCommand(cmd.pullMissing(layout(join(tmp, "pull dir")), "r/a@sha256:x", 2))], {
      encoding: "utf8",
      env: { ...process.env, PATH: `${pullBin}:${process.env.PATH}`, ...env },
    });
    return { code: r.status, ...lastStep(r.stderr), ms: Date.now() - started };
  };

  it("a pull that keeps printing progress for longer than the stall window succeeds", () => {
    const r = pull({ MOVE_TENTHS: "40", STALL: "0" });
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThan(3_500);
  });

  it("a pull that goes silent is ended after the stall window with exit 7 and its last lines", () => {
    const r = pull({ MOVE_TENTHS: "6", STALL: "1" });
    expect(r.code).toBe(7);
    expect(r.stderr).toMatch(/Downloading 3\s[\s\S]*no progress for 2 s\n$/);
    expect(r.ms).toBeLessThan(10_000);
  });
});
