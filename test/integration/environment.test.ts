// Proves the integration environment is real: a real registry, a real Docker engine pushing to it, and the
// manifest digest read back over HTTP equals what `docker push` reported.
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildAppImage, docker, pushImage } from "./helpers/images.js";
import { startRegistry, type Registry } from "./helpers/registry.js";

describe("integration environment", () => {
  let registry: Registry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it("pushes a busybox test image and reads its manifest digest back over HTTP", async () => {
    buildAppImage("hamalog-test/app:env", { version: "env" });
    const ref = `${registry.host}/acme/app:env`;
    const pushed = pushImage("hamalog-test/app:env", ref);
    const res = await fetch(`${registry.url}/v2/acme/app/manifests/env`, {
      headers: { Accept: "application/vnd.docker.distribution.manifest.v2+json" },
    });
    expect(res.status).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get("docker-content-digest")).toBe(pushed);
    expect(`sha256:${createHash("sha256").update(body).digest("hex")}`).toBe(pushed);
    docker(["rmi", ref, "hamalog-test/app:env"]);
  });

  it("answers MANIFEST_UNKNOWN for a tag that was never pushed (the seed's error)", async () => {
    const res = await fetch(`${registry.url}/v2/acme/app/manifests/453a6545b97fe240727c378291230abeb793d851`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe("MANIFEST_UNKNOWN");
  });
});
