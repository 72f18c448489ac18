// `hamalog deploy --help` and `rollback --help` list every phase of every registered strategy, in order, with the
// text the strategies' step lists give (phasesOf): the help is generated, so a strategy's new step shows up there.
import { describe, expect, it } from "vitest";
import { main } from "../../ci/cli/main.js";
import type { Io } from "../../ci/cli/command.js";
import { phasesOf } from "../../ci/core/deploy/attempt.js";
import { STRATEGY } from "../../ci/core/deploy/strategies.js";

async function help(command: string): Promise<string> {
  const out: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => out.push(t), env: {} };
  expect(await main([command, "--help"], io)).toBe(0);
  return out.join("\n");
}

describe.each(["deploy", "rollback"])("hamalog %s --help", (command) => {
  it.each(Object.values(STRATEGY).map((st) => [st.name, st] as const))(
    "lists the phases of %s in order, each with what it does",
    async (name, st) => {
      const text = await help(command);
      const lines = text.split("\n");
      const at = lines.indexOf(`  ${name}: ${st.summary}`);
      expect(at, text).toBeGreaterThan(0);
      const phases = phasesOf(st);
      expect(phases.length).toBeGreaterThan(2);
      phases.forEach((p, i) => {
        expect(lines[at + 1 + i]).toMatch(new RegExp(`^ {4}${p.phase} +`));
        expect(lines[at + 1 + i]!.trimEnd().endsWith(`  ${p.does}`)).toBe(true);
      });
    },
  );
});
