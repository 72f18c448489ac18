// The CLI dispatcher's contract: each error kind a command throws becomes its exit code and one stderr message.
import { describe, expect, it } from "vitest";
import { main } from "../../ci/cli/main.js";
import type { Command, Io } from "../../ci/cli/command.js";
import { ConfigError, InternalError, PipelineError } from "../../ci/core/errors.js";
import { checkPublished } from "../../ci/core/publish.js";

function throwing(error: unknown) {
  const command: Command = {
    name: "boom",
    summary: "throws",
    usage: "",
    options: {},
    run: async () => {
      throw error;
    },
  };
  return { boom: { summary: "throws", load: async () => command } };
}

async function runBoom(error: unknown, env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), env };
  const code = await main(["boom"], io, throwing(error));
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

describe("hamalog error kinds → exit codes", () => {
  it.each([
    ["ConfigError", new ConfigError("--sha: required"), 2],
    ["PipelineError", new PipelineError("registry said no", "verify-manifest"), 1],
    ["an unexpected Error", new Error("socket hang up"), 1],
  ])("%s exits %i with its message and no stack", async (_, error, code) => {
    const r = await runBoom(error);
    expect(r.code).toBe(code);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`hamalog boom: ${(error as Error).message}`);
  });

  it("an InternalError exits 70, says it is a bug to report, and prints where it was thrown", async () => {
    const r = await runBoom(new InternalError("checkPublished was given no reference to publish"));
    expect(r.code).toBe(70);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^hamalog boom: internal error: checkPublished was given no reference to publish\./);
    expect(r.stderr).toMatch(/internal unexpected error, not a problem with your input/);
    expect(r.stderr).toMatch(/please open an issue at https:\/\/\S+\/issues/);
    expect(r.stderr).toMatch(/\n\s+at .*cli-main\.test\.ts/);
  });

  it("HAMALOG_DEBUG prints the stack of any error", async () => {
    const r = await runBoom(new PipelineError("registry said no"), { HAMALOG_DEBUG: "1" });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/PipelineError: registry said no\n\s+at /);
  });

  it("the core's impossible states are InternalErrors, not failures of the user's input", () => {
    expect(() => checkPublished([], [])).toThrow(InternalError);
  });
});
