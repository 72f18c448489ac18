// Blue/green as text (ci/core/deploy/colours.ts): a release's compose file (the template's other services, one
// colour, the proxy under the app's name) and the Caddyfile; the services that reach the app (compose.ts).
import { parseDocument } from "yaml";
import { describe, expect, it } from "vitest";
import { dependentsOf } from "../../ci/core/compose.js";
import { parseConfig, requireDeploy } from "../../ci/core/config.js";
import { caddyfile, liveOf, renderColour, upstreamPort } from "../../ci/core/deploy/colours.js";

const config = (proxy: string) =>
  requireDeploy(
    parseConfig(
      `image: {repository: a/b}\ndeploy: {host: h, user: u, directory: /srv/app/, service: app, composeFile: c.yaml, strategy: blue-green, proxy: {${proxy}}, health: {url: "http://127.0.0.1:8080/actuator/health"}}\n`,
    ),
  );
const d = config(`publish: "127.0.0.1:8080:80", image: "caddy:2@sha256:${"a".repeat(64)}"`);
const template = {
  template: [
    "services:",
    "  app:",
    "    image: x",
    "    container_name: fixed",
    '    ports: ["127.0.0.1:8080:9000"]',
    "    environment: {A: '1'}",
    "    env_file: [.env.prod]",
    "    depends_on: {db: {condition: service_healthy}}",
    "  db:",
    "    image: postgres",
    "    env_file: .env.prod",
    "  nginx:",
    "    image: nginx",
    "    depends_on: {app: {condition: service_healthy}}",
    "  tunnel:",
    "    image: cloudflared",
    "    depends_on: [nginx]",
    "",
  ].join("\n"),
};
const services = (yaml: string) => (parseDocument(yaml).toJS() as { services: Record<string, any> }).services;

describe("a blue/green release file", () => {
  it("holds the template's other services, ONE colour without host ports or a fixed name, and the proxy under the app's name", () => {
    const r = renderColour(template, d, { colour: "blue", image: "r/a@sha256:1", envFile: "/srv/app/releases/x.env" }, [
      "h",
    ]);
    const s = services(r.yaml);
    expect(Object.keys(s).sort()).toEqual(["app-blue", "db", "hamalog-proxy", "nginx", "tunnel"]);
    expect(s["app-blue"]).toEqual({
      image: "r/a@sha256:1",
      environment: { A: "1" },
      env_file: ["/srv/app/releases/x.env"],
      depends_on: { db: { condition: "service_healthy" } },
      restart: "unless-stopped",
    });
    // The db meant the same env file: it gets the release's too.
    expect(s.db.env_file).toEqual(["/srv/app/releases/x.env"]);
    // What reached the app by name reaches the proxy now (it has no healthcheck: started is ready).
    expect(s.nginx.depends_on).toEqual({ "hamalog-proxy": { condition: "service_started" } });
    expect(s.tunnel.depends_on).toEqual(["nginx"]);
    expect(s["hamalog-proxy"]).toEqual({
      image: `caddy:2@sha256:${"a".repeat(64)}`,
      restart: "unless-stopped",
      ports: ["127.0.0.1:8080:80", "127.0.0.1::9900", "127.0.0.1::9901", "127.0.0.1::9902"],
      volumes: ["/srv/app/proxy:/etc/caddy:ro"],
      networks: { default: { aliases: ["app"] } },
      labels: { "hamalog.proxy-config": r.proxyConfig },
    });
    expect(r.warnings.join("\n")).toMatch(/container_name/);
  });

  it("keeps the template's restart policy and networks (the proxy joins each as the app)", () => {
    const t = {
      template:
        "services:\n  app:\n    image: x\n    expose: ['8080']\n    restart: always\n    networks: [front, back]\n",
    };
    const s = services(renderColour(t, d, { colour: "green", image: "r/a@sha256:2" }, []).yaml);
    expect(s["app-green"].restart).toBe("always");
    expect(s["hamalog-proxy"].networks).toEqual({ front: { aliases: ["app"] }, back: { aliases: ["app"] } });
  });

  it("the proxy's definition hash: the same for every release, another without the public port or with another image", () => {
    const a = renderColour(template, d, { colour: "blue", image: "r/a@sha256:1" }, ["x"]).proxyConfig;
    expect(renderColour(template, d, { colour: "green", image: "r/a@sha256:9" }, ["y"]).proxyConfig).toBe(a);
    expect(renderColour(template, d, { colour: "blue", image: "r/a@sha256:1" }, [], false).proxyConfig).not.toBe(a);
    expect(
      renderColour(
        template,
        config('publish: "127.0.0.1:8080:80", image: "caddy:2.7"'),
        { colour: "blue", image: "r" },
        [],
      ).proxyConfig,
    ).not.toBe(a);
  });

  it("a stack with no public port publishes only the loopback check sites", () => {
    const s = services(renderColour(template, config('image: "caddy:2"'), { colour: "blue", image: "r" }, []).yaml);
    expect(s["hamalog-proxy"].ports).toEqual(["127.0.0.1::9900", "127.0.0.1::9901", "127.0.0.1::9902"]);
  });

  it.each([
    ["hamalog-proxy", "  hamalog-proxy: {image: x}\n", /hamalog-proxy is reserved/],
    ["a colour", "  app-blue: {image: x}\n", /app-blue is reserved/],
  ])("refuses a template that already has %s", (_, extra, err) => {
    expect(() =>
      renderColour({ template: `${template.template}${extra}` }, d, { colour: "blue", image: "r" }, []),
    ).toThrow(err);
  });
});

describe("the app's port", () => {
  it.each([
    ['ports: ["127.0.0.1:8080:9000"]', 9000],
    ["ports: [9100]", 9100],
    ['ports: [{target: 9200, published: "8080"}]', 9200],
    ['expose: ["9300"]', 9300],
  ])("from %s", (line, port) => {
    expect(upstreamPort({ template: `services:\n  app:\n    image: x\n    ${line}\n` }, "app")).toBe(port);
  });

  it("says how to give it when the template has none, and refuses the proxy's own ports", () => {
    expect(() => upstreamPort({ template: "services:\n  app:\n    image: x\n" }, "app")).toThrow(/expose: \["8080"\]/);
    expect(() => upstreamPort({ template: "services:\n  app:\n    image: x\n    expose: ['9901']\n" }, "app")).toThrow(
      /a port the edge proxy uses itself/,
    );
  });
});

describe("the Caddyfile", () => {
  it("routes the app's name, the public port and the live check site to the live colour with retries; check sites to their colour", () => {
    const c = caddyfile(d, "green", 9000);
    expect(liveOf(c)).toBe("green");
    expect(c).toContain(":9000, :80, :9900 {\n\treverse_proxy app-green:9000 {\n\t\tlb_try_duration 60s");
    expect(c).toContain(":9901 {\n\treverse_proxy app-blue:9000\n}");
    expect(c).toContain(":9902 {\n\treverse_proxy app-green:9000\n}");
    expect(c).toContain("auto_https off");
    const none = caddyfile(d, null, 9000);
    expect(liveOf(none)).toBeNull();
    expect(none).toMatch(/respond "no release is live yet" 503/);
  });

  it("before a migration's switch, routes to the recreate-layout container by its name", () => {
    expect(caddyfile(d, null, 9000, "proj-app-1")).toContain("reverse_proxy proj-app-1:9000 {");
  });

  it("serves a domain with Caddy's HTTPS (tls internal when asked), and the app's name in the stack over HTTP", () => {
    const c = caddyfile({ ...d, proxy: { ...d.proxy, domain: "app.example.com", tls: "internal" } }, "blue", 8080);
    expect(c).toContain("app.example.com {\n\ttls internal\n\treverse_proxy app-blue:8080");
    expect(c).toContain(":8080, :9900 {");
    expect(c).not.toContain("auto_https off");
  });
});

describe("the services that reach the app", () => {
  it("are those that depend on it, transitively (started once it is live)", () => {
    expect(dependentsOf(template, "app").sort()).toEqual(["nginx", "tunnel"]);
    expect(dependentsOf({ template: "services:\n  app: {image: x}\n  db: {image: y}\n" }, "app")).toEqual([]);
  });
});
