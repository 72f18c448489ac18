// The README's first command (`npm run demo`, whose work is ci/scripts/demo.ts) runs end to end and shows what
// the product does: v1 and v2 deployed, the broken v3 never going live (blue/green), 0 dropped requests, the seed's
// `main-<sha>` near miss caught, and nothing left running afterwards.
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { ROOT } from "../helpers/cli.js";

describe("npm run demo (ci/scripts/demo.ts)", () => {
  it("deploys v1 and v2 blue/green with 0 dropped requests, keeps the broken v3 from going live, catches the seed's near miss, and cleans up", () => {
    const r = spawnSync("npx", ["tsx", "ci/scripts/demo.ts"], { cwd: ROOT, encoding: "utf8", timeout: 200_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    expect(r.status, out).toBe(0);
    expect(out).toMatch(/→ exit 0; the app now answers: hamalog v1/);
    expect(out).toMatch(/→ exit 0; the app now answers: hamalog v2/);
    expect(out).toMatch(/never went live; sha [0-9a-f]{12} \(sha256:[0-9a-f]{12}…, (blue|green)\) kept serving/);
    expect(out.match(/→ dropped requests: 0 of \d+/g)).toHaveLength(2); // v2 and the broken v3
    // No request was ever answered by the broken v3: the loop during its deploy saw v2 only.
    expect(out).toMatch(
      /→ exit 1; the app now answers: hamalog v2\n→ dropped requests: 0 of \d+ \(answers seen: hamalog v2\)$/m,
    );
    expect(out).toMatch(/main-[0-9a-f]{40} — the same commit/);
    expect(out).toMatch(/stopped in preflight, the host was not touched; the app still answers: hamalog v2/);
    expect(out).toMatch(/^demo done: .*\(0 request\(s\) dropped in all\)/m);
    const left = spawnSync("docker", ["ps", "-aq", "--filter", "label=com.docker.compose.project=hamalog-demo"], {
      encoding: "utf8",
    });
    expect(left.stdout.trim()).toBe("");
    // Nor a warm timer (the host agent's process that stops the old colour after deploy/proxy/warmSeconds).
    const timers = spawnSync("ps", ["-eo", "args="], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((l) => / _warm \S+ \S+ hamalog-demo$/.test(l.trim()));
    expect(timers).toEqual([]);
  });
});
