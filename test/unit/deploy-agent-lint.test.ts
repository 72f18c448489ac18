// The host agent as installed (the base script, each strategy's part, the dispatch) parses under the shells a
// server has as /bin/sh — dash and busybox ash — and passes shellcheck for POSIX sh, except for the checks listed
// below, each of which the script breaks on purpose.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { AGENT_SCRIPT } from "../../ci/core/deploy/host/agent.js";

const dir = mkdtempSync(join(tmpdir(), "hamalog-agent-lint-"));
const file = join(dir, "agent.sh");
writeFileSync(file, AGENT_SCRIPT);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Deliberate: each is how the script is meant to work. */
const ACCEPTED = {
  SC1091: "recover.sh is written per attempt: nothing to follow at lint time",
  SC2016: "single-quoted $ in trap and awk programs: expanded later, by them",
  SC2034: "variables read by sourced recover.sh",
  SC2086: "lists of services and ids split on purpose (names cannot hold spaces)",
  SC2116: "$(echo $x) squeezes a whitespace-separated list into one line",
  SC2163: 'export "$l": exports the NAME=value line itself, never expanded',
  SC2174: "mkdir -p -m applies the mode to the last directory only: the parents exist (0700 deploy dir)",
};

describe("the host agent's shell", () => {
  it.each([
    ["dash", "sh"],
    ["busybox ash", "busybox"],
  ])("parses under %s", (_, shell) => {
    const r = spawnSync(shell, shell === "busybox" ? ["sh", "-n", file] : ["-n", file], { encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
  });

  it("passes shellcheck -s sh but for the deliberate checks", () => {
    const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", "-e", Object.keys(ACCEPTED).join(","), file], {
      encoding: "utf8",
    });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe("");
    expect(r.status).toBe(0);
  });

  it("shellcheck finds what it should (so the check above can fail)", () => {
    const bad = join(dir, "bad.sh");
    writeFileSync(bad, `${AGENT_SCRIPT}\nop_broken() { cd $1; [ $x == 1 ]; }\n`);
    const r = spawnSync("shellcheck", ["-s", "sh", "-f", "gcc", "-e", Object.keys(ACCEPTED).join(","), bad], {
      encoding: "utf8",
    });
    expect(r.stdout).toMatch(/SC3014|SC2164/);
  });
});
