// The host steps: what the agent (agent.ts) can do to what serves, as plain data — an op name and its arguments.
// A procedure runs them through `Host.run`; a recovery plan lists them and recovery.ts writes them into
// recover.sh, which the agent runs without the client. The same builder serves both, so a step is spelled once.
import { quoteWord } from "../shell.js";

export interface HostStep {
  /** The agent's step function (`step_<op>` in agent.ts). */
  op: string;
  args: string[];
  /** One line for messages and the recovery's description. */
  why: string;
}

/** A release's compose file and env file ("" when it has none), relative to the deploy directory. */
export interface ReleaseFiles {
  composeFile: string;
  envFile?: string;
}

const files = (r: ReleaseFiles) => [r.composeFile, r.envFile ?? ""];

export const step = {
  /** Bring `services` up from the release's file, gated by compose (`up --no-deps --wait`). */
  up: (r: ReleaseFiles, waitSeconds: number, services: string[], why: string): HostStep => ({
    op: "up",
    args: [...files(r), String(waitSeconds), ...services],
    why,
  }),
  remove: (services: string[], why = `remove ${services.join(", ")}`): HostStep => ({
    op: "remove",
    args: services,
    why,
  }),
  stop: (services: string[], why = `stop ${services.join(", ")}`): HostStep => ({ op: "stop", args: services, why }),
  start: (services: string[], why = `start ${services.join(", ")}`): HostStep => ({ op: "start", args: services, why }),
  restart: (services: string[], why = `restart ${services.join(", ")}`): HostStep => ({
    op: "restart",
    args: services,
    why,
  }),
  /** Make the proxy route by the Caddyfile at `caddyfile` (relative to the deploy dir), starting it if it does not run. */
  route: (caddyfile: string, r: ReleaseFiles, why: string): HostStep => ({
    op: "route",
    args: [caddyfile, ...files(r)],
    why,
  }),
};

/**
 * recover.sh: the steps (the first that fails stops it), then the journal and the history line the client
 * prepared for this outcome (both in .hamalog/recover/). Sourced by the agent's `recover` step, which defines
 * `rstep`, `rjournal`, `rhistory`; every argument quoted like any remote word.
 */
export function recoverScript(project: string, steps: readonly HostStep[], describe: string): string {
  const lines = [
    `# hamalog recovery: ${describe.replace(/[\r\n]+/g, " ")}`,
    "# written with journal.json by the run that holds the lock; run by the agent if that run dies. Do not edit.",
    `P=${quoteWord(project)}`,
    ...steps.map((s) => `rstep ${[s.op, ...s.args].map(quoteWord).join(" ")} || return 1`),
    "rjournal && rhistory",
    "",
  ];
  return lines.join("\n");
}
