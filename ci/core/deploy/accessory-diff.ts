// How an accessory's definition changed between the live release's compose file and the new one, as a short
// unified-style line diff of that one service (`- old` / `+ new`). The files hold `${VAR}` references, never the
// values, so the diff shows no secret; a change that is only in interpolated values shows no lines and says so.
import { parse, stringify } from "yaml";

function serviceText(file: string, svc: string): string[] {
  try {
    const doc = parse(file) as { services?: Record<string, unknown> } | null;
    const s = doc?.services?.[svc];
    return s === undefined ? [] : stringify(s, { lineWidth: 0 }).trimEnd().split("\n");
  } catch {
    return [];
  }
}

/** Lines of the diff (at most `max`); without a readable old file, one line saying so. */
export function diffServices(oldFile: string, newFile: string, svc: string, max = 40): string[] {
  if (!oldFile.trim()) return ["(the live release's compose file is not there to compare with)"];
  const a = serviceText(oldFile, svc);
  const b = serviceText(newFile, svc);
  // Longest common subsequence over lines: the blocks are small.
  const n = a.length;
  const m = b.length;
  const L: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--)
    for (let j = m - 1; j >= 0; j--)
      L[i]![j] = a[i] === b[j] ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const out: string[] = [];
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] === b[j]) {
      i++;
      j++;
    } else if (j < m && (i >= n || L[i]![j + 1]! >= L[i + 1]![j]!)) out.push(`+ ${b[j++]}`);
    else out.push(`- ${a[i++]}`);
  }
  if (out.length === 0) return ["(the file's text is the same: an interpolated value it uses changed, e.g. a secret)"];
  return out.length > max ? [...out.slice(0, max), `… ${out.length - max} more line(s)`] : out;
}
