// Blue/green as text (ci/core/deploy/colours.ts): the compose file with two colours and the proxy, and the Caddyfile.
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import { caddyfile, liveOf, publicProbe, renderColours, upstreamPort } from "../../ci/core/deploy/colours.js";

const d = requireDeploy(
  parseConfig(
    'image: {repository: a/b}\ndeploy: {host: h, user: u, directory: /srv/app/, service: app, composeFile: c.yaml, strategy: blue-green, proxy: {publish: "127.0.0.1:8080:80", image: "caddy:2@sha256:' +
      "a".repeat(64) +
      '"}, health: {url: "http://127.0.0.1:8080/actuator/health"}}\n',
  ),
);
const template = {
  template:
    'services:\n  app:\n    image: x\n    container_name: fixed\n    ports: ["127.0.0.1:8080:9000"]\n    environment: {A: "1"}\n  db:\n    image: postgres\n',
};

describe("blue/green rendering", () => {
  it("renders each pinned colour without host ports beside the proxy; other services stay", () => {
    const r = renderColours(template, d, { blue: "r/a@sha256:1", green: "r/a@sha256:2" }, ["h"]);
    const svcs = (parseDocument(r.yaml).toJS() as { services: Record<string, any> }).services;
    expect(Object.keys(svcs).sort()).toEqual(["app-blue", "app-green", "db", "hamalog-proxy"]);
    expect(svcs["app-blue"]).toEqual({ image: "r/a@sha256:1", environment: { A: "1" } });
    expect(svcs["app-green"].image).toBe("r/a@sha256:2");
    expect(svcs["hamalog-proxy"]).toEqual({
      image: `caddy:2@sha256:${"a".repeat(64)}`,
      restart: "unless-stopped",
      ports: ["127.0.0.1:8080:80", "127.0.0.1::8001", "127.0.0.1::8002"],
      volumes: ["/srv/app/proxy:/etc/caddy:ro"],
      labels: { "hamalog.proxy-config": r.proxyConfig },
    });
    // The label changes with the proxy's definition, so a deploy re-creates the proxy exactly when it must.
    expect(renderColours(template, d, { blue: "r/a@sha256:9" }, ["other header"]).proxyConfig).toBe(r.proxyConfig);
    expect(renderColours(template, d, { blue: "r/a@sha256:1" }, [], false).proxyConfig).not.toBe(r.proxyConfig);
    expect(r.warnings.join("\n")).toMatch(/container_name/);
  });

  it("leaves an unpinned colour out, and the public port out while migrating", () => {
    const r = renderColours(template, d, { blue: "r/a@sha256:1" }, [], false);
    const svcs = (parseDocument(r.yaml).toJS() as { services: Record<string, any> }).services;
    expect(svcs["app-green"]).toBeUndefined();
    expect(svcs["hamalog-proxy"].ports).toEqual(["127.0.0.1::8001", "127.0.0.1::8002"]);
  });

  it.each([
    ['ports: ["127.0.0.1:8080:9000"]', 9000],
    ["ports: [9100]", 9100],
    ['ports: [{target: 9200, published: "8080"}]', 9200],
    ['expose: ["9300"]', 9300],
  ])("the app's port from %s", (line, port) => {
    expect(upstreamPort({ template: `services:\n  app:\n    image: x\n    ${line}\n` }, "app")).toBe(port);
  });

  it("says how to give the port when the template has none", () => {
    expect(() => upstreamPort({ template: "services:\n  app:\n    image: x\n" }, "app")).toThrow(/expose: \["8080"\]/);
  });

  it("routes the public site to the live colour with retries; check sites always to their colour", () => {
    const c = caddyfile(d, "green", 9000);
    expect(liveOf(c)).toBe("green");
    expect(c).toContain(":80 {\n\treverse_proxy app-green:9000 {\n\t\tlb_try_duration 60s");
    expect(c).toContain(":8001 {\n\treverse_proxy app-blue:9000\n}");
    expect(c).toContain(":8002 {\n\treverse_proxy app-green:9000\n}");
    expect(c).toContain("auto_https off");
    const none = caddyfile(d, null, 9000);
    expect(liveOf(none)).toBeNull();
    expect(none).toMatch(/respond "no release is live yet" 503/);
  });

  it("serves a domain with Caddy's HTTPS (tls internal when asked)", () => {
    const c = caddyfile({ ...d, proxy: { ...d.proxy, domain: "app.example.com", tls: "internal" } }, "blue", 8080);
    expect(c).toContain("app.example.com {\n\ttls internal\n\treverse_proxy app-blue:8080");
    expect(c).not.toContain("auto_https off");
  });

  it.each([
    ["127.0.0.1:8080:80", { host: "127.0.0.1", port: 8080 }],
    ["0.0.0.0:9090:80", { host: "127.0.0.1", port: 9090 }],
    ["8081:80", { host: "127.0.0.1", port: 8081 }],
  ])("probes the live route of %s at %j", (publish, want) => {
    expect(publicProbe(publish)).toEqual(want);
  });
});
