// `hamalog deploy`: the digest-pinned, health-gated deploy (ci/core/deploy/run.ts); --help lists the phases.
import { deploy } from "../core/deploy/run.js";
import { parseSha } from "../core/tags.js";
import type { Command } from "./command.js";
import { CHANGE_OPTIONS, interruptible, LOCK_OPTIONS, REMOTE_OPTIONS, remoteDoor } from "./deploy-env.js";
import { phaseHelp } from "./phases.js";

export const command: Command = {
  name: "deploy",
  summary:
    "Deploy the image of a commit (its sha tag, verified to a digest) to the host over SSH, or here with deploy/host local: the strategy's phases under the host's lock, health-gated; a failure or an interruption is undone on the host, which keeps or restores the live release.",
  usage: "--sha SHA --ssh-key-file FILE [--password-env VAR] [--config FILE] [--dry-run] [overrides]",
  options: {
    sha: { type: "string", help: "full 40-character commit sha whose image to deploy (e.g. $GITHUB_SHA)" },
    "dry-run": { type: "boolean", help: "print the plan and the rendered compose file; change nothing on the host" },
    ...LOCK_OPTIONS,
    ...CHANGE_OPTIONS,
    ...REMOTE_OPTIONS,
  },
  more: phaseHelp,
  async run(values, io) {
    return interruptible(async (signal) => {
      const { input, env } = remoteDoor(values, io, signal);
      await deploy(
        { ...input, sha: parseSha(values.sha as string | undefined), ...(values["dry-run"] ? { dryRun: true } : {}) },
        env,
      );
      return 0;
    });
  },
};
