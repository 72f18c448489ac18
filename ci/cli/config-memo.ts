// `tag` needs one field of the config, but must refuse an invalid pipeline.yaml exactly as every other command
// does, and validating it means loading yaml and zod: ~50 ms, most of `tag`'s start-up (docs/benchmarks.md).
// Validation is a pure function of the file's text and the overrides, so its outcome is memoised per CLI build
// (io.cacheDir): a file that validated once is not validated again until it, the flags or the code change.
// Only successes are kept, so every error is found afresh and reads as it always did.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readConfigText } from "../core/config-text.js";
import type { Overrides } from "../core/overrides.js";
import type { Io } from "./command.js";

/** The validated config's defaultBranch, from the memo when this exact input validated before. */
export async function validatedDefaultBranch(path: string | undefined, overrides: Overrides, io: Io): Promise<string> {
  const source = readConfigText(path);
  // The whole input is stored and compared, so the file name's hash only has to spread entries, not be unique;
  // it is not node:crypto, whose loading costs a few milliseconds of a ~10 ms budget.
  const input = JSON.stringify([source.name, source.text, overrides]);
  const memo = io.cacheDir ? join(io.cacheDir, "config-memo", `${spread(input)}.json`) : undefined;
  if (memo) {
    try {
      const kept = JSON.parse(readFileSync(memo, "utf8")) as { input?: unknown; defaultBranch?: unknown };
      if (kept.input === input && typeof kept.defaultBranch === "string") return kept.defaultBranch;
    } catch {
      // not memoised yet, or unreadable: validate
    }
  }
  const { parseConfig } = await import("../core/config.js");
  const { defaultBranch } = parseConfig(source.text, source.name, overrides);
  if (memo) {
    try {
      mkdirSync(join(memo, ".."), { recursive: true });
      const tmp = `${memo}.${process.pid}`;
      writeFileSync(tmp, JSON.stringify({ input, defaultBranch }));
      renameSync(tmp, memo);
    } catch {
      // a read-only cache costs speed, not correctness
    }
  }
  return defaultBranch;
}

/** FNV-1a, 32 bits, as hex. */
function spread(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, "0");
}
