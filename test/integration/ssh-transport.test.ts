// The SSH transport (ci/core/deploy/ssh.ts) against a real sshd on 127.0.0.1, where things go wrong after the connection
// is up: an app that accepts the health probe's connection and never answers, and a connection reset in the
// middle of a command (a TCP proxy between the client and sshd sends the RST). Neither may hang or kill the
// process: both must come back as failures of the call in flight, so the deploy can roll back and unlock.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PipelineError } from "../../ci/core/errors.js";
import { connectSsh } from "../../ci/core/deploy/ssh.js";
import type { Remote } from "../../ci/core/deploy/remote.js";
import { startGate, type Gate } from "./helpers/http-gate.js";
import { waitFor } from "./helpers/ports.js";
import { startSshd, type Sshd } from "./helpers/sshd.js";

let sshd: Sshd;
let gate: Gate;
let tmp: string;

const sleep = (ms: number) => new Promise<"timeout">((r) => setTimeout(() => r("timeout"), ms));
const connect = (port = sshd.port): Promise<Remote> =>
  connectSsh(
    {
      host: "127.0.0.1",
      port,
      user: sshd.user,
      privateKey: readFileSync(sshd.keyFile, "utf8"),
      hostKey: sshd.hostKeyFingerprint,
    },
    () => undefined,
  );

beforeAll(async () => {
  [sshd, gate] = await Promise.all([startSshd(), startGate("hang")]);
  tmp = mkdtempSync(join(tmpdir(), "hamalog-ssh-transport-"));
});

afterAll(async () => {
  await Promise.all([sshd?.stop(), gate?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("ssh transport failures after connect", () => {
  it("an HTTP probe to an app that accepts and never answers fails within its timeout and closes the tunnel", async () => {
    const remote = await connect();
    try {
      gate.mode = "hang";
      const hungUp = gate.nextHangUp();
      const started = Date.now();
      const r = await Promise.race([
        remote.httpGet(gate.url, 1500).then(
          (a) => `answered ${a.status}`,
          (e: Error) => e,
        ),
        sleep(15_000),
      ]);
      const took = Date.now() - started;
      expect(r, "the probe must fail on its own deadline, not hang").toBeInstanceOf(Error);
      expect((r as Error).message).toBe("no answer within 1500 ms");
      expect(took).toBeGreaterThanOrEqual(1400);
      expect(took).toBeLessThan(5000);
      expect(
        await Promise.race([hungUp.then(() => "closed"), sleep(5000)]),
        "the app sees the probe's connection closed",
      ).toBe("closed");
      expect(gate.requests).toBe(1);
      // The SSH connection itself is fine afterwards.
      gate.mode = 200;
      expect(await remote.httpGet(gate.url, 5000)).toEqual({ status: 200, body: "gate\n" });
    } finally {
      remote.close();
    }
  });

  it("a connection reset during a command fails that command and every later one, and does not crash the process", async () => {
    const clients: Socket[] = [];
    const proxy: Server = createServer((client) => {
      clients.push(client);
      const upstream = createConnection({ host: "127.0.0.1", port: sshd.port });
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
    const marker = join(tmp, "started");
    try {
      const remote = await connect((proxy.address() as { port: number }).port);
      try {
        const inflight = remote.run(["sh", "-c", 'touch "$1"; exec sleep 30', "hamalog-test", marker]).then(
          (r) => r,
          (e: unknown) => e,
        );
        await waitFor("the remote command to start", async () => existsSync(marker), 10_000);
        for (const c of clients) c.resetAndDestroy();
        const r = await Promise.race([inflight, sleep(10_000)]);
        expect(r).toBeInstanceOf(PipelineError);
        expect((r as Error).message).toMatch(
          /^the SSH connection to root@127\.0\.0\.1:\d+ failed while running `hamalog-test` \(ECONNRESET\) — what it did on the host is unknown/,
        );
        await expect(remote.run(["true"])).rejects.toThrow(/failed while running `true` \(ECONNRESET\)/);
        await expect(remote.httpGet(gate.url, 1000)).rejects.toThrow(/failed while requesting .*\(ECONNRESET\)/);
      } finally {
        remote.close();
      }
    } finally {
      await new Promise((r) => proxy.close(r));
    }
  });
});
