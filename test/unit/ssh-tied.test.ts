// The wrapper ssh.ts runs stdin-less remote commands under (TIED), through a real `sh` the way sshd runs a session:
// in a process group of its own, stdin a pipe the client holds open. The command's output and exit code pass
// through, its words are never interpreted, and closing stdin (what a closed SSH channel does) stops it.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it, onTestFinished } from "vitest";
import { tied } from "../../ci/core/deploy/tied.js";

const tmp = mkdtempSync(join(tmpdir(), "hamalog-tied-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Start `tied(argv)` like sshd does (its own session and process group, stdin a pipe). */
function session(argv: string[]) {
  const [sh, ...args] = tied(argv);
  const child = spawn(sh!, args, { detached: true, stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.on("close", (code, signal) => {
      child.stdin.end(); // lets the watcher's orphaned `cat` go, as sshd does when the session ends
      resolve({ code, signal, out });
    }),
  );
  return { child, done };
}

describe("tied: remote commands that die with their SSH channel", () => {
  it("passes output and the exit code through, and keeps hostile words literal", async () => {
    const marker = join(tmp, "marker");
    const s = session([
      "sh",
      "-c",
      'printf "%s|" "$@"; echo oops >&2; exit 3',
      "x",
      `$(touch ${marker})`,
      "a b",
      "'\"`;|&",
    ]);
    const r = await s.done; // stdin is left open, as the client does: the command still ends on its own
    expect(r.code).toBe(3);
    expect(r.out).toBe(`$(touch ${marker})|a b|'"\`;|&|oops\n`);
    expect(existsSync(marker)).toBe(false);
  });

  it("gives the command /dev/null as stdin, not the channel", async () => {
    const s = session(["sh", "-c", "cat; echo read-done"]);
    s.child.stdin.write("must not be read\n");
    const r = await s.done;
    expect(r).toMatchObject({ code: 0, out: "read-done\n" });
  });

  it("stops the command and everything it started when stdin closes (the channel closed)", async () => {
    const pidFile = join(tmp, "grandchild");
    const s = session(["sh", "-c", `sleep 30 & echo $! > ${pidFile}; wait`]);
    onTestFinished(() => {
      try {
        process.kill(-s.child.pid!, "SIGKILL"); // the session's group, should the wrapper have left it running
      } catch {
        // gone, as it should be
      }
    });
    const started = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    const grandchild = Number(readFileSync(pidFile, "utf8"));
    s.child.stdin.end();
    const r = await s.done;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(r.code === 143 || r.signal === "SIGTERM", JSON.stringify(r)).toBe(true);
    // The grandchild got the TERM too (gone, or a zombie waiting to be reaped by init).
    const running = () => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${grandchild}/stat`, "utf8"));
      } catch {
        return false; // gone
      }
    };
    for (let i = 0; i < 20 && running(); i++) await new Promise((res) => setTimeout(res, 100));
    expect(running()).toBe(false);
  });
});
