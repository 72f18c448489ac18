// `hamalog rollback`: back to the previous successful deploy (or --to SHA|DIGEST from history), same health gate.
import { parseRollbackTo } from "../core/deploy/history.js";
import { rollback } from "../core/deploy/run.js";
import type { Command } from "./command.js";
import { CHANGE_OPTIONS, interruptible, LOCK_OPTIONS, REMOTE_OPTIONS, remoteDoor } from "./deploy-env.js";
import { phaseHelp } from "./phases.js";

export const command: Command = {
  name: "rollback",
  summary:
    "Roll the compose host back to the previous successful deploy, or to --to SHA|DIGEST from its history; same lock and health gate as deploy.",
  usage: "--ssh-key-file FILE [--to SHA|DIGEST] [--config FILE] [--dry-run] [overrides]",
  options: {
    to: {
      type: "string",
      help: "a deployed commit sha (7+ characters) or digest (sha256:…); default: the previous successful deploy",
      valueName: "SHA|DIGEST",
    },
    "dry-run": { type: "boolean", help: "print the plan and the rendered compose file; change nothing on the host" },
    ...LOCK_OPTIONS,
    ...CHANGE_OPTIONS,
    ...REMOTE_OPTIONS,
  },
  more: phaseHelp,
  async run(values, io) {
    return interruptible(async (signal) => {
      const to = parseRollbackTo(values.to as string | undefined);
      const { input, env } = remoteDoor(values, io, signal);
      await rollback(
        { ...input, ...(to !== undefined ? { to } : {}), ...(values["dry-run"] ? { dryRun: true } : {}) },
        env,
      );
      return 0;
    });
  },
};
