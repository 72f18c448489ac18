// `hamalog tag`: the tag definition on the command line. The config is validated through a memo
// (config-memo.ts): `tag` runs in every CI job and should start about as fast as Node itself.
import { parseSha, tagsFor } from "../core/tags.js";
import type { Command } from "./command.js";
import { validatedDefaultBranch } from "./config-memo.js";

export const command: Command = {
  name: "tag",
  summary: "Print the image tags for a commit, one per line: the full sha, then `latest` on the default branch.",
  usage: "--sha SHA --branch BRANCH [--default-branch BRANCH] [--config FILE]",
  options: {
    sha: { type: "string", help: "full 40-character commit sha (e.g. $GITHUB_SHA)" },
    branch: { type: "string", help: "branch being built (e.g. $GITHUB_REF_NAME)" },
    "default-branch": {
      type: "string",
      help: "branch that also gets `latest` (default: config defaultBranch, else main)",
    },
    config: { type: "string", help: "pipeline config file (for defaultBranch)", valueName: "FILE" },
  },
  async run(values, io) {
    const defaultBranch = await validatedDefaultBranch(
      values.config as string | undefined,
      { defaultBranch: values["default-branch"] as string | undefined },
      io,
    );
    const tags = tagsFor({
      sha: parseSha(values.sha as string | undefined),
      branch: (values.branch as string | undefined) ?? "",
      defaultBranch,
    });
    io.out(tags.join("\n"));
    return 0;
  },
};
