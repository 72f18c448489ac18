// Why a push was refused, in words a person can act on, as verify-manifest explains a failed pull. The engine
// reports a refused push as its registry client saw it (e.g. GHCR's `denied: permission_denied: write_package`);
// this turns the known causes into what to change, and leaves any other error as it was. Pure: text in, Error out.
import { PipelineError } from "./errors.js";

export interface PushTarget {
  registry: string;
  repository: string;
  username: string;
  /** The reference being published, registry/repository:tag. */
  reference: string;
}

/** The error to report for a failed publish of `target`: an explanation for known refusals, else `err` itself. */
export function explainPushFailure(err: unknown, target: PushTarget): unknown {
  const raw = err instanceof Error ? err.message : String(err);
  const { registry, repository, username, reference } = target;
  if (/permission_denied:\s*write_package/i.test(raw)) {
    const [owner, ...name] = repository.split("/");
    return new PipelineError(
      `push of ${reference} refused: ${registry} answered \`denied: permission_denied: write_package\` to ${username}. ` +
        `The credentials are valid, but the package ${repository} is not linked to the repository whose token pushes ` +
        `(a package first pushed from elsewhere, e.g. a laptop or an older workflow, belongs to no repository), or ` +
        `the workflow lacks \`permissions: packages: write\`.\n` +
        `Next: on GitHub open the package ${name.join("/")} of ${owner} → Package settings → Manage Actions access → ` +
        `Add repository (the one running this workflow) with the Write role; keep \`permissions: packages: write\` ` +
        `on the job. With a personal access token instead, it needs the \`write:packages\` scope.\n` +
        `(engine: ${firstLine(raw)})`,
      "push",
    );
  }
  if (/\b(401 Unauthorized|unauthorized: authentication required|UNAUTHORIZED)\b/.test(raw)) {
    return new PipelineError(
      `push of ${reference} refused: ${registry} did not accept the credentials of ${username} (unauthorized).\n` +
        `Next: check --registry-username and the --registry-token Secret (tokens expire; GHCR needs write:packages ` +
        `or GITHUB_TOKEN with \`permissions: packages: write\`).\n(engine: ${firstLine(raw)})`,
      "push",
    );
  }
  return err;
}

function firstLine(s: string): string {
  const line = s.split("\n").find((l) => l.trim() !== "") ?? s;
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
