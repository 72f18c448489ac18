// The phases `deploy --help` and `rollback --help` list: each registered strategy's, from its step list (phasesOf in
// the attempt frame), the same text the dry run prints and docs/deploy.md tabulates — never a hand-written copy.
import { phasesOf } from "../core/deploy/attempt.js";
import { STRATEGY } from "../core/deploy/strategies.js";

export function phaseHelp(): string[] {
  const all = Object.values(STRATEGY);
  const width = Math.max(...all.flatMap((st) => phasesOf(st).map((p) => p.phase.length)));
  return [
    "phases, per deploy/strategy (connect, probe and preflight come first and change nothing on the host):",
    ...all.flatMap((st) => [
      `  ${st.name}: ${st.summary}`,
      ...phasesOf(st).map((p) => `    ${p.phase.padEnd(width)}  ${p.does}`),
    ]),
    "Details: docs/deploy.md.",
  ];
}
