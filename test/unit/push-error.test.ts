// A refused push is explained like a refused pull: GHCR's write_package denial names the package link and the
// setting to change; other registry refusals name the credentials; anything else is left as the engine said it.
import { describe, expect, it } from "vitest";
import { PipelineError } from "../../ci/core/errors.js";
import { explainPushFailure } from "../../ci/core/push-error.js";

const target = {
  registry: "ghcr.io",
  repository: "daemin-kim/hamalog-backend",
  username: "daemin-kim",
  reference: "ghcr.io/daemin-kim/hamalog-backend:453a6545b97fe240727c378291230abeb793d851",
};

describe("explainPushFailure", () => {
  it("GHCR's write_package denial: the package is not linked to the repository; says where to fix it", () => {
    const engine = new Error(
      "failed to export: failed to push ghcr.io/daemin-kim/hamalog-backend:453a6545b97fe240727c378291230abeb793d851: denied: permission_denied: write_package",
    );
    const e = explainPushFailure(engine, target);
    expect(e).toBeInstanceOf(PipelineError);
    const m = (e as PipelineError).message;
    expect((e as PipelineError).phase).toBe("push");
    expect(m).toContain(`push of ${target.reference} refused`);
    expect(m).toMatch(/not linked to the repository/);
    expect(m).toMatch(/Manage Actions access → Add repository .* Write role/);
    expect(m).toMatch(/permissions: packages: write/);
    expect(m).toContain("hamalog-backend of daemin-kim");
    expect(m).toContain("(engine: failed to export");
  });

  it.each([
    "failed to push: unexpected status from HEAD request: 401 Unauthorized",
    "failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized",
  ])("a 401 names the credentials: %s", (raw) => {
    const m = (explainPushFailure(new Error(raw), target) as Error).message;
    expect(m).toMatch(/did not accept the credentials of daemin-kim/);
    expect(m).toMatch(/--registry-token/);
  });

  it("any other failure is passed through unchanged", () => {
    const other = new Error("failed to solve: process did not complete successfully: exit code: 1");
    expect(explainPushFailure(other, target)).toBe(other);
  });
});
