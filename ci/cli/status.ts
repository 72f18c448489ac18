// `hamalog status`: what runs on the compose host now (digest, sha, container health, last history lines).
import { ConfigError } from "../core/errors.js";
import { status } from "../core/deploy/status.js";
import type { Command } from "./command.js";
import { REMOTE_OPTIONS, remoteDoor } from "./deploy-env.js";

export const command: Command = {
  name: "status",
  summary:
    "Show what runs on the compose host: the deployed digest and sha, container state and health, and the last history lines.",
  usage: "--ssh-key-file FILE [--config FILE] [--lines N] [overrides]",
  options: {
    lines: { type: "string", help: "history lines to show (default 5)", valueName: "N" },
    ...REMOTE_OPTIONS,
  },
  async run(values, io) {
    const raw = values.lines as string | undefined;
    if (raw !== undefined && !/^\d+$/.test(raw)) throw new ConfigError(`--lines: \`${raw}\` is not a whole number`);
    const { input, env } = remoteDoor(values, io, undefined, false);
    await status({ ...input, ...(raw !== undefined ? { lines: Number(raw) } : {}) }, env);
    return 0;
  },
};
