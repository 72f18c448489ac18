// `hamalog deploy`: the digest-pinned, health-gated compose deploy over SSH (ci/src/deploy/run.ts).
import { deploy } from "../core/deploy/run.js";
import { parseSha } from "../core/tags.js";
import type { Command } from "./command.js";
import { CHANGE_OPTIONS, interruptible, LOCK_OPTIONS, REMOTE_OPTIONS, remoteDoor } from "./deploy-env.js";

export const command: Command = {
  name: "deploy",
  summary:
    "Deploy the image of a commit to the compose host over SSH: verify its tag to a digest, lock, log in, render the pinned compose file, pull if absent, up --wait, health check; roll back automatically on failure.",
  usage: "--sha SHA --ssh-key-file FILE [--password-env VAR] [--config FILE] [--dry-run] [overrides]",
  options: {
    sha: { type: "string", help: "full 40-character commit sha whose image to deploy (e.g. $GITHUB_SHA)" },
    "dry-run": { type: "boolean", help: "print the plan and the rendered compose file; change nothing on the host" },
    ...LOCK_OPTIONS,
    ...CHANGE_OPTIONS,
    ...REMOTE_OPTIONS,
  },
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
