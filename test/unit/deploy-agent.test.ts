// The host agent (ci/core/deploy/host/agent.ts) on a real filesystem with the real sh, flock, setsid and tar, each
// argv quoted by shell.ts as sshd receives it, and a stand-in `docker` first on PATH that logs its argv (and what a
// login read on stdin) and sleeps or fails when told to. What is asserted is what the host is left with: the lock
// and its fencing token, the files a bundle installs (whole or not at all), a step that finishes after its client
// was killed, the heartbeat that recovers by itself when its client goes silent, vanishes or aborts.
import { spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AGENT_EXIT, AGENT_FILE, AGENT_SCRIPT, BOOTSTRAP, LOCK_BOOTSTRAP } from "../../ci/core/deploy/host/agent.js";
import { bundle, type BundleEntry } from "../../ci/core/deploy/host/bundle.js";
import { lastStep } from "../../ci/core/deploy/host/host.js";
import { recoverScript, step } from "../../ci/core/deploy/host/steps.js";
import { sections } from "../../ci/core/deploy/host/view.js";
import { shellCommand } from "../../ci/core/deploy/shell.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-agent-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const bin = join(tmp, "bin");
const log = join(tmp, "docker.log");
mkdirSync(bin);
// The stand-in docker: logs `DOCKER_CONFIG argv`; `login` logs what it read on stdin; SLEEP_ON/FAIL_ON make the
// call whose argv holds that word sleep 1 s (then touch MARK) or exit 15.
writeFileSync(
  join(bin, "docker"),
  `#!/bin/sh
echo "\${DOCKER_CONFIG:-none} $*" >> "${log}"
case " $* " in *" login "*) echo "stdin: $(cat)" >> "${log}";; esac
case " $* " in *" $SLEEP_ON "*) sleep 1; touch "$MARK";; esac
case " $* " in *" $FAIL_ON "*) echo "docker: $FAIL_ON refused" >&2; exit 15;; esac
case "$*" in "compose version") echo "Docker Compose version v2.26.1";; "info --format"*) echo linux/x86_64;; "image inspect"*) [ -n "$PRESENT" ] || exit 1;; esac
exit 0
`,
);
chmodSync(join(bin, "docker"), 0o755);

let n = 0;
function deployDir(): string {
  const d = join(tmp, `srv ${n++}; $(x)`);
  mkdirSync(d, { mode: 0o700 });
  return d;
}
const env = (extra: Record<string, string> = {}) => ({
  ...process.env,
  PATH: `${bin}:${process.env.PATH}`,
  SLEEP_ON: "-none-",
  FAIL_ON: "-none-",
  MARK: join(tmp, "mark"),
  ...extra,
});
function sh(argv: string[], input: string | Buffer = "", extra: Record<string, string> = {}) {
  const r = spawnSync("sh", ["-c", shellCommand(argv)], { input, encoding: "utf8", env: env(extra) });
  const { step, stderr } = lastStep(r.stderr);
  return { code: r.status ?? -1, stdout: r.stdout, raw: r.stderr, step, stderr };
}
const agent = (d: string) => join(d, ".hamalog", AGENT_FILE);
const probe = (d: string) =>
  sh(["sh", "-c", BOOTSTRAP, "bootstrap", d, AGENT_FILE, "0", "proj", "reg/app", "30"], AGENT_SCRIPT);
/** Install the agent the way a deploy does: its first lock (then freed). */
function install(d: string) {
  const r = lock(d, "installer");
  expect(r.code, r.raw).toBe(0);
  expect(sh(op(d, "unlock", String(r.token))).code).toBe(0);
  return r;
}
const op = (d: string, ...args: string[]) => ["sh", agent(d), d, ...args];
const holder = (id: string) =>
  `${JSON.stringify({ holder: id, sha: "a".repeat(40), since: "t", action: "deploy", id })}\n`;
function lock(d: string, id: string, force = false, prepare?: { files: BundleEntry[]; expect: string }) {
  const r = sh(
    [
      "sh",
      "-c",
      LOCK_BOOTSTRAP,
      "lock",
      d,
      AGENT_FILE,
      "30",
      "0",
      force ? "1" : "0",
      "proj",
      "reg/app",
      prepare?.expect ?? "",
    ],
    bundle([
      { path: "agent.sh", content: AGENT_SCRIPT },
      { path: "holder.json", content: holder(id) },
      ...(prepare?.files ?? []),
    ]),
  );
  const s = sections(r.stdout);
  return { ...r, token: Number((s.get("token") ?? "").trim()), prepared: s.get("prepared")?.trim() };
}
const run = (d: string, token: number, files: BundleEntry[], o: string, ...args: string[]) =>
  sh(op(d, "run", String(token), "proj", `t${n++}`, "1", o, ...args), bundle(files));
const read = (p: string) => (existsSync(p) ? readFileSync(p, "utf8") : "");
const calls = () => read(log).trim().split("\n").filter(Boolean);
const until = async (what: string, ok: () => boolean, ms = 8000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe("the probe writes nothing; the lock installs the agent", () => {
  it.each([
    ["a group-writable directory", (d: string) => chmodSync(d, 0o770), "writable drwxrwx---"],
    ["an other-writable sticky directory", (d: string) => chmodSync(d, 0o1777), "writable drwxrwxrwt"],
    [
      "a symlinked release file",
      (d: string) => symlinkSync("/etc/hostname", join(d, "journal.json")),
      "symlink journal.json",
    ],
    ["a symlinked dot-entry", (d: string) => symlinkSync("/tmp", join(d, ".hamalog")), "symlink .hamalog"],
  ])("%s is refused by the probe (exit 6)", (_, arrange, complaint) => {
    const d = deployDir();
    arrange(d);
    const r = probe(d);
    expect(r.code).toBe(6);
    expect(r).toMatchObject({ step: "dir", stderr: complaint });
  });

  it("the probe reports compose, tools and memory without writing anything, not even the directory", () => {
    const d = join(tmp, `ro ${n++}`);
    const r = probe(d);
    expect(r.code, r.raw).toBe(0);
    const s = sections(r.stdout);
    expect(s.get("compose")?.trim()).toMatch(/2\.26\.1/);
    expect(s.get("tools")?.trim()).toBe("");
    expect(Number(s.get("memory"))).toBeGreaterThan(0);
    expect(existsSync(d)).toBe(false);
  });

  it("the first lock creates the directory (0700) and installs the agent once; later locks leave it alone", () => {
    const d = join(tmp, `fresh ${n++}`);
    install(d);
    expect(statSync(join(d, ".hamalog")).mode & 0o777).toBe(0o700);
    expect(read(agent(d))).toBe(AGENT_SCRIPT);
    expect(statSync(agent(d)).mode & 0o777).toBe(0o600);
    const before = statSync(agent(d)).mtimeMs;
    install(d);
    expect(statSync(agent(d)).mtimeMs).toBe(before);
  });
});

describe("the lock: a fencing token under one flock", () => {
  it("hands out increasing tokens; a fresh lock is refused naming its holder; a stale one is taken over", () => {
    const d = deployDir();
    const a = lock(d, "A");
    expect(a.code).toBe(0);
    expect(a.token).toBe(1);
    const b = lock(d, "B");
    expect(b.code).toBe(AGENT_EXIT.held);
    expect(sections(b.stdout).get("held")).toMatch(/"holder":"A"/);
    expect(sections(b.stdout).get("held")).toMatch(
      /^hamalog-lease \d+ \d+ unknown no its lease was renewed \d+ s ago$/m,
    );
    // A lease not renewed for longer than the lease: stale, taken over with a new token, naming whose it was.
    const old = Date.now() / 1000 - 120;
    utimesSync(join(d, ".hamalog", "lease"), old, old);
    const c = lock(d, "C");
    expect(c.code).toBe(0);
    expect(c.token).toBe(2);
    expect(sections(c.stdout).get("took-over")).toMatch(
      /^\{"token":1,"holder":"A".*\}\nits lease expired \(not renewed for \d+ s > 30 s\)\nstale\n?$/,
    );
    // --break-lock takes it from a live holder too, and says it broke a lock that was not stale.
    const e = lock(d, "E", true);
    expect(e.token).toBe(3);
    expect(sections(e.stdout).get("took-over")).toMatch(
      /^\{"token":2,"holder":"C".*\}\nits lease was renewed \d+ s ago\nbroken\n?$/,
    );
    expect(JSON.parse(read(join(d, ".hamalog", "lock.json")))).toMatchObject({ token: 3, holder: "E" });
  });

  it("installs the attempt's files with the lock only while the journal is the one the client planned from", () => {
    const d = deployDir();
    install(d);
    writeFileSync(join(d, "journal.json"), "probed\n");
    const files = [
      { path: "files/releases/app-1.yaml", content: "x\n" },
      { path: "files/journal.json", content: "attempt\n" },
    ];
    const hash = (t: string) => spawnSync("sha256sum", { input: t, encoding: "utf8" }).stdout.slice(0, 64);
    // Another run changed the journal since the probe: nothing installed, the client prepares after reconciling.
    const stale = lock(d, "A", false, { files, expect: hash("something else\n") });
    expect(stale.prepared).toBe("no");
    expect(read(join(d, "journal.json"))).toBe("probed\n");
    expect(existsSync(join(d, "releases/app-1.yaml"))).toBe(false);
    sh(op(d, "unlock", String(stale.token)));
    const ok = lock(d, "B", false, { files, expect: hash("probed\n") });
    expect(ok.prepared).toBe("yes");
    expect(read(join(d, "journal.json"))).toBe("attempt\n");
    expect(read(join(d, "releases/app-1.yaml"))).toBe("x\n");
    expect(sections(ok.stdout).get("journal-hash")?.trim()).toBe(hash("attempt\n"));
  });

  it("a holder that lost its lock changes nothing: its next step is refused (exit 75) and its files are not installed", () => {
    const d = deployDir();
    const a = lock(d, "A");
    expect(run(d, a.token, [{ path: "files/journal.json", content: '{"by":"A"}\n' }], "noop").code).toBe(0);
    const b = lock(d, "B", true);
    const r = run(d, a.token, [{ path: "files/journal.json", content: '{"by":"A again"}\n' }], "stop", "app");
    expect(r.code).toBe(AGENT_EXIT.fenced);
    expect(r.raw).toMatch(
      /the lock is no longer this run's \(token 1; now 2\): another run took it over — nothing was changed/,
    );
    expect(read(join(d, "journal.json"))).toBe('{"by":"A"}\n');
    expect(calls().some((c) => c.includes(" stop "))).toBe(false);
    // Its unlock leaves the new holder's lock alone.
    expect(sh(op(d, "unlock", String(a.token))).code).toBe(AGENT_EXIT.fenced);
    expect(sh(op(d, "unlock", String(b.token))).code).toBe(0);
    expect(existsSync(join(d, ".hamalog", "lock.token"))).toBe(false);
  });
});

describe("bundles: installed whole, the journal last", () => {
  it("installs files (env 0600, proxy/ 0644), appends history lines, and stages files the step reads", () => {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    const r = run(
      d,
      t,
      [
        { path: "files/releases/app-1.yaml", content: "services: {}\n" },
        { path: "files/releases/app-1.env", content: "A='1'\n" },
        { path: "files/proxy/Caddyfile", content: "# hamalog live: none\n" },
        { path: "files/journal.json", content: "{}\n" },
        { path: "history.add", content: '{"line":1}\n' },
      ],
      "noop",
    );
    expect(r.code, r.stderr).toBe(0);
    expect(read(join(d, "releases/app-1.yaml"))).toBe("services: {}\n");
    expect(statSync(join(d, "releases/app-1.env")).mode & 0o777).toBe(0o600);
    expect(statSync(join(d, "proxy/Caddyfile")).mode & 0o777).toBe(0o644);
    expect(read(join(d, "journal.json"))).toBe("{}\n");
    expect(read(join(d, "history.jsonl"))).toBe('{"line":1}\n');
    expect(readdirSync(join(d, ".hamalog", "ops")).filter((f) => f.startsWith("stage."))).toEqual([]);
  });

  it("a torn lock request takes no lock and installs nothing (exit 74)", () => {
    const d = join(tmp, `torn ${n++}`);
    const whole = bundle([
      { path: "agent.sh", content: AGENT_SCRIPT },
      { path: "holder.json", content: holder("A") },
    ]);
    const r = sh(
      ["sh", "-c", LOCK_BOOTSTRAP, "lock", d, AGENT_FILE, "30", "0", "0", "proj", "reg/app", ""],
      whole.subarray(0, 4000),
    );
    expect(r.code).toBe(AGENT_EXIT.torn);
    expect(existsSync(agent(d))).toBe(false);
    expect(existsSync(join(d, ".hamalog", "lock.token"))).toBe(false);
  });

  it("a torn bundle (the client killed mid-send) installs nothing and says so (exit 74)", () => {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    writeFileSync(join(d, "journal.json"), "old\n");
    const whole = bundle([
      { path: "files/releases/x.yaml", content: "x".repeat(3000) },
      { path: "files/journal.json", content: "new\n" },
    ]);
    const r = sh(op(d, "run", String(t), "proj", "torn", "0", "noop"), whole.subarray(0, 1500));
    expect(r.code).toBe(AGENT_EXIT.torn);
    expect(r.stderr).toMatch(/did not arrive whole/);
    expect(read(join(d, "journal.json"))).toBe("old\n");
    expect(existsSync(join(d, "releases/x.yaml"))).toBe(false);
  });
});

describe("critical steps run to their end on the host", () => {
  it("a detached step goes on after its client is killed, and writes its exit code", async () => {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    rmSync(join(tmp, "mark"), { force: true });
    const s = step.up({ composeFile: "releases/a.yaml" }, 30, ["app"], "up");
    const child = spawn("sh", ["-c", shellCommand(op(d, "run", String(t), "proj", "crit", "1", s.op, ...s.args))], {
      env: env({ SLEEP_ON: "up" }),
      stdio: ["pipe", "ignore", "ignore"],
      detached: true,
    });
    child.stdin.end(bundle([]));
    await new Promise((r) => setTimeout(r, 300));
    process.kill(-child.pid!, "SIGKILL");
    await until("the step's exit code", () => existsSync(join(d, ".hamalog/ops/crit.rc")));
    expect(read(join(d, ".hamalog/ops/crit.rc")).trim()).toBe("0");
    expect(existsSync(join(tmp, "mark"))).toBe(true);
    expect(
      calls().some((c) => c.includes("compose --project-name proj") && c.includes("up --detach --no-deps --wait")),
    ).toBe(true);
  });
});

describe("the heartbeat recovers on the host when its client goes away", () => {
  /** A lock with a journal whose recovery stops `app` and writes `after` as the journal, then a heartbeat. */
  function armed(lease: string) {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    rmSync(log, { force: true });
    const r = run(
      d,
      t,
      [
        { path: "files/journal.json", content: "during\n" },
        { path: "files/.hamalog/recover.sh", content: recoverScript("proj", [step.stop(["app"])], "test") },
        { path: "files/.hamalog/recover/journal.json", content: "after\n" },
        { path: "files/.hamalog/recover/history.add", content: '{"recovered":true}\n' },
      ],
      "noop",
    );
    expect(r.code, r.stderr).toBe(0);
    const hb = spawn("sh", ["-c", shellCommand(op(d, "heartbeat", String(t), lease))], {
      env: env(),
      stdio: ["pipe", "ignore", "ignore"],
    });
    hb.stdin.write("beat\n");
    return { d, hb };
  }
  const recovered = (d: string) =>
    read(join(d, "journal.json")) === "after\n" &&
    read(join(d, "history.jsonl")) === '{"recovered":true}\n' &&
    !existsSync(join(d, ".hamalog", "lock.token"));

  it("its input ends (client killed, connection dropped): the recovery runs and the lock is freed", async () => {
    const { d, hb } = armed("30");
    await new Promise((r) => setTimeout(r, 200));
    hb.stdin.end();
    await until("the host's recovery", () => recovered(d));
    // The recovery's step asked for app's containers (the stand-in has none to stop).
    expect(calls()).toContainEqual(
      expect.stringMatching(/^none ps --all --quiet --no-trunc .*label=com\.docker\.compose\.service=app$/),
    );
  });

  it("the client says abort (Ctrl-C): the same recovery", async () => {
    const { d, hb } = armed("30");
    hb.stdin.write("abort\n");
    await until("the host's recovery", () => recovered(d));
    hb.kill();
  });

  it("no line for the lease (a frozen client): the same recovery, after the lease", async () => {
    const { d, hb } = armed("1");
    const t0 = Date.now();
    await until("the host's recovery", () => recovered(d), 6000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    hb.kill();
  });

  it("beats renew the lease, and a heartbeat whose lock was taken over ends without recovering", async () => {
    const { d, hb } = armed("30");
    const lease = join(d, ".hamalog", "lease");
    const old = Date.now() / 1000 - 60;
    utimesSync(lease, old, old);
    hb.stdin.write("beat\n");
    await until("the renewal", () => statSync(lease).mtimeMs / 1000 > old + 30);
    lock(d, "B", true);
    hb.stdin.end();
    await new Promise((r) => setTimeout(r, 500));
    expect(read(join(d, "journal.json"))).toBe("during\n");
    expect(calls().some((c) => c.includes("label=com.docker.compose.service=app"))).toBe(false);
  });

  it("a recovery step that fails leaves the journal naming the attempt, says so in history, frees the lock", async () => {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    run(
      d,
      t,
      [
        { path: "files/journal.json", content: "during\n" },
        {
          path: "files/.hamalog/recover.sh",
          content: recoverScript("proj", [step.stop(["app"]), step.start(["db"])], "t"),
        },
        { path: "files/.hamalog/recover/journal.json", content: "after\n" },
        { path: "files/.hamalog/recover/history.failed", content: '{"failed":true}\n' },
      ],
      "noop",
    );
    const r = sh(op(d, "run", String(t), "proj", "rec", "1", "recover", "client"), bundle([]), { FAIL_ON: "--quiet" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/recovery failed; the journal still names the attempt/);
    expect(read(join(d, "journal.json"))).toBe("during\n");
    expect(read(join(d, "history.jsonl"))).toBe('{"failed":true}\n');
    expect(existsSync(join(d, ".hamalog", "lock.token"))).toBe(false);
  });
});

describe("pull: the registry token lives for one command", () => {
  it("logs in with the token on stdin into a throwaway config, pulls, logs out, and removes the config", () => {
    const d = deployDir();
    install(d);
    rmSync(log, { force: true });
    const r = sh(op(d, "pull", "reg/app@sha256:1", "0", "reg", "bob"), "tok-s3cret\n");
    expect(r.code, r.stderr).toBe(0);
    const c = calls();
    expect(c[0]).toMatch(/^none image inspect reg\/app@sha256:1$/);
    expect(c[1]).toMatch(
      new RegExp(`^${d.replace(/[$()]/g, "\\$&")}/\\.hamalog/docker-\\w+ login --username bob --password-stdin reg$`),
    );
    expect(c[2]).toBe("stdin: tok-s3cret");
    expect(c.find((x) => x.includes(" pull "))).toMatch(/docker-\w+ pull --quiet reg\/app@sha256:1$/);
    expect(c.at(-1)).toMatch(/docker-\w+ logout reg$/);
    expect(c.join("\n")).not.toMatch(/tok-s3cret.*(login|pull)/);
    expect(readdirSync(join(d, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
  });

  it("skips everything when the digest is on the host; a failed login fails the login step", () => {
    const d = deployDir();
    install(d);
    rmSync(log, { force: true });
    expect(sh(op(d, "pull", "reg/app@sha256:1", "0", "reg", "bob"), "t\n", { PRESENT: "1" }).stdout).toMatch(
      /hamalog-image-present/,
    );
    expect(calls()).toHaveLength(1);
    const r = sh(op(d, "pull", "reg/app@sha256:1", "0", "reg", "bob"), "t\n", { FAIL_ON: "login" });
    expect(r.code).toBe(15);
    expect(r.step).toBe("login");
    expect(readdirSync(join(d, ".hamalog")).filter((f) => f.startsWith("docker-"))).toEqual([]);
  });
});

describe("finish", () => {
  it("mirrors compose.yaml, prunes what it is given, removes older agents, frees the lock", () => {
    const d = deployDir();
    install(d);
    const t = lock(d, "A").token;
    mkdirSync(join(d, "releases"));
    writeFileSync(join(d, "releases/app-1.yaml"), "live\n");
    writeFileSync(join(d, "releases/app-0.yaml"), "old\n");
    writeFileSync(join(d, ".hamalog/agent-000000000000.sh"), "old agent\n");
    rmSync(log, { force: true });
    const r = sh(
      op(
        d,
        "run",
        String(t),
        "proj",
        "fin",
        "0",
        "finish",
        "releases/app-1.yaml",
        "",
        "",
        "reg/app@sha256:0",
        "--",
        "app-0.yaml",
      ),
      bundle([]),
    );
    expect(r.code, r.stderr).toBe(0);
    expect(read(join(d, "compose.yaml"))).toBe("live\n");
    expect(existsSync(join(d, "releases/app-0.yaml"))).toBe(false);
    expect(existsSync(join(d, "releases/app-1.yaml"))).toBe(true);
    expect(calls()).toEqual(["none image rm reg/app@sha256:0"]);
    expect(existsSync(join(d, ".hamalog/agent-000000000000.sh"))).toBe(false);
    expect(existsSync(agent(d))).toBe(true);
    expect(existsSync(join(d, ".hamalog", "lock.token"))).toBe(false);
  });

  it("the warm timer stops the kept colour once the window is over, unless the journal changed meanwhile", async () => {
    const arm = (changed: boolean) => {
      const d = deployDir();
      install(d);
      const t = lock(d, "A").token;
      const now = Math.floor(Date.now() / 1000);
      const r = sh(
        op(d, "run", String(t), `proj${changed}`, "fin", "0", "finish", "", String(now + 1), "app-green", "--"),
        bundle([
          { path: "files/journal.json", content: "warm\n" },
          { path: "files/.hamalog/warm.journal", content: "cooled\n" },
        ]),
      );
      expect(r.code, r.stderr).toBe(0);
      if (changed) writeFileSync(join(d, "journal.json"), "another deploy\n");
      return d;
    };
    rmSync(log, { force: true });
    const kept = arm(false);
    const moved = arm(true);
    await until("the window's end", () => read(join(kept, "journal.json")) === "cooled\n", 6000);
    await new Promise((res) => setTimeout(res, 500));
    expect(read(join(moved, "journal.json"))).toBe("another deploy\n");
    expect(
      calls()
        .filter((c) => c.includes("label=com.docker.compose.service=app-green"))
        .map((c) => /project=(\w+)/.exec(c)?.[1]),
    ).toEqual(["projfalse"]);
  });
});
