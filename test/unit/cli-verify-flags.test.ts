// verify-manifest accepts the config flags docs/config.md lists (--registry, --repository) and applies them.
import { describe, expect, it } from "vitest";
import { hamalog } from "../helpers/cli.js";

describe("hamalog verify-manifest config flags", () => {
  it("--registry/--repository override pipeline.yaml (the repository lowercased) — seen in the diagnosis", async () => {
    // Port 1 on loopback is closed: the command must fail (exit 1) naming exactly the image it was told to check.
    const r = await hamalog([
      "verify-manifest",
      "--registry",
      "127.0.0.1:1",
      "--repository",
      "Acme/App",
      "--tag",
      "latest",
      "--timeout",
      "2",
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("127.0.0.1:1/acme/app");
  });
  it("refuses --image together with --repository (exit 2)", async () => {
    const r = await hamalog(["verify-manifest", "--image", "127.0.0.1:1/a/b", "--repository", "c/d", "--tag", "x"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--image and --registry\/--repository/);
  });
});
