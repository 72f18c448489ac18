// deploy/proxy/domain on the real Caddy 2 image: the Caddyfile blue/green renders for a domain with `tls internal`
// (no ACME server is reachable here) loads, serves the live colour over HTTPS on the published port, and its check
// sites (the live one the live-health gate asks, the colour's own the candidate gate asks) still answer over plain
// HTTP on loopback. Everything on 127.0.0.1, removed at the end.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import { caddyfile, CHECK_PORT } from "../../ci/core/deploy/colours.js";
import { buildSlowAppImage, docker } from "./helpers/images.js";
import { freePort, waitFor } from "./helpers/ports.js";

const ID = `hamalog-caddy-tls-${process.pid}`;
const CADDY = process.env.HAMALOG_CADDY_IMAGE ?? "hamalog-test/caddy:2.6.2";
let tmp: string;
let httpsPort: number;
let liveCheckPort: number;
let blueCheckPort: number;

function httpsGet(port: number, host: string): Promise<{ status: number; body: string; issuer: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/version", servername: host, headers: { host }, rejectUnauthorized: false },
      (res) => {
        let body = "";
        // Read while the socket is still attached to the response (it is released at the end).
        const cert = (res.socket as import("node:tls").TLSSocket).getPeerCertificate(true);
        const issuer = String(cert.issuer?.CN ?? "");
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: body.trim(), issuer }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "hamalog-caddy-tls-"));
  [httpsPort, liveCheckPort, blueCheckPort] = [await freePort(), await freePort(), await freePort()];
  buildSlowAppImage(`${ID}/app:v1`, { version: "tls v1", closedSeconds: 0, unhealthySeconds: 0 });
  docker(["network", "create", ID]);
  docker(["run", "-d", "--name", `${ID}-app`, "--network", ID, "--network-alias", "app-blue", `${ID}/app:v1`]);
  const d = requireDeploy(
    parseConfig(
      `image: {repository: a/b}\ndeploy: {host: h, user: u, directory: /srv/x, service: app, composeFile: c.yaml, strategy: blue-green, health: {url: "http://127.0.0.1/version"}, proxy: {publish: "127.0.0.1:${httpsPort}:443", domain: hamalog.localhost, tls: internal}}\n`,
    ),
  );
  writeFileSync(join(tmp, "Caddyfile"), caddyfile(d, "blue", 8080));
  docker([
    ...["run", "-d", "--name", `${ID}-proxy`, "--network", ID],
    ...["-p", `127.0.0.1:${httpsPort}:443`, "-v", `${tmp}:/etc/caddy:ro`],
    ...["-p", `127.0.0.1:${liveCheckPort}:${CHECK_PORT.live}`, "-p", `127.0.0.1:${blueCheckPort}:${CHECK_PORT.blue}`],
    CADDY,
  ]);
  await waitFor("caddy serving https", async () =>
    httpsGet(httpsPort, "hamalog.localhost").then(
      () => true,
      () => false,
    ),
  );
});

afterAll(() => {
  for (const c of [`${ID}-proxy`, `${ID}-app`]) {
    try {
      docker(["rm", "-f", c]);
    } catch {
      // never started
    }
  }
  try {
    docker(["network", "rm", ID]);
    docker(["rmi", "-f", `${ID}/app:v1`]);
  } catch {
    // already gone
  }
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe("deploy/proxy/domain with tls internal on real Caddy", () => {
  it("serves the live colour over HTTPS with a certificate from Caddy's own CA", async () => {
    const r = await httpsGet(httpsPort, "hamalog.localhost");
    expect(r).toMatchObject({ status: 200, body: "tls v1" });
    expect(r.issuer).toMatch(/Caddy Local Authority/);
  });

  it.each([
    ["the live check site (the live-health gate)", () => liveCheckPort],
    ["blue's own check site (the candidate gate)", () => blueCheckPort],
  ])("keeps %s on plain HTTP", async (_what, port) => {
    const r = await fetch(`http://127.0.0.1:${port()}/version`, { signal: AbortSignal.timeout(10_000) });
    expect(r.status).toBe(200);
    expect((await r.text()).trim()).toBe("tls v1");
  });
});
