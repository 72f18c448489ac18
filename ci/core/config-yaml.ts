// pipeline.yaml text → plain data, bounded: a size cap before parsing, duplicate keys found in one pass (the
// yaml library's own `uniqueKeys` compares every pair: 40k keys took 18 s), alias bombs refused, and every
// problem a ConfigError naming the file (exit 2), never a raw parser exception.
import { LineCounter, isMap, isScalar, parseDocument, visit } from "yaml";
import { checkConfigSize } from "./config-text.js";
import { ConfigError } from "./errors.js";

/** Aliases expanded per document; each may copy a whole subtree, so a few nested ones make gigabytes. */
const MAX_ALIAS_COUNT = 100;

/** Parse YAML config text; empty text is `{}`. */
export function readConfigYaml(text: string, configName: string): unknown {
  checkConfigSize(Buffer.byteLength(text, "utf8"), configName);
  if (text.trim() === "") return {};
  const lineCounter = new LineCounter();
  const where = (offset: number) => {
    const pos = lineCounter.linePos(offset);
    return `${configName}:${pos.line}:${pos.col}`;
  };
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: false, lineCounter });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new ConfigError(
      `${where(e.pos[0])}: YAML syntax error: ${e.message.split("\n")[0]} — fix the file and run again`,
    );
  }
  visit(doc, {
    Map(_, map) {
      if (!isMap(map)) return;
      const seen = new Set<string>();
      for (const pair of map.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined) continue;
        if (seen.has(key)) {
          const at = isScalar(pair.key) && pair.key.range ? where(pair.key.range[0]) : configName;
          throw new ConfigError(`${at}: YAML syntax error: duplicate key \`${key.slice(0, 60)}\` — keep one of them`);
        }
        seen.add(key);
      }
    },
  });
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (e) {
    const bomb = /alias/i.test((e as Error).message);
    throw new ConfigError(
      bomb
        ? `${configName}: too many YAML aliases (*name) expand here (more than ${MAX_ALIAS_COUNT}): a config never needs this many; write the values out`
        : `${configName}: cannot be read as YAML (${(e as Error).message.split("\n")[0]}) — fix the file and run again`,
    );
  }
}
