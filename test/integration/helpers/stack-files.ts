// The two files a deploy against this machine's test stack needs, as text: the compose template of the busybox
// app (test/integration/helpers/images.ts builds it; it serves /version and a health path on 8080) and the
// pipeline.yaml pointing at a local registry, the test sshd and a compose project. Pure: callers write them.

export interface ComposeTemplateOptions {
  /** Host port published on 127.0.0.1, mapped to the app's 8080. */
  appPort: number;
  /** The compose service name (default `app`). */
  service?: string;
  /** The `image:` value (default `placeholder`: deploy pins the digest in its place). */
  image?: string;
  /** Path the container's wget health check asks on 127.0.0.1:8080 (default `/health`). */
  healthPath?: string;
  /** Health check `retries` (default 2). */
  retries?: number;
  /** Health check `start_period` (default `1s`); null leaves the key out. */
  startPeriod?: string | null;
  /** Top-level lines before `services:` (e.g. `version: "3.8"`, `name: …`). */
  preamble?: string[];
  /** Lines of the service, 4-space indented, placed right after `ports:` (e.g. labels). */
  extraLines?: string[];
  /** `stop_grace_period` (default `1s`): how long a replacement waits for the old container to stop. */
  stopGracePeriod?: string;
}

export function composeTemplate(o: ComposeTemplateOptions): string {
  return [
    ...(o.preamble ?? []),
    "services:",
    `  ${o.service ?? "app"}:`,
    `    image: ${o.image ?? "placeholder"}`,
    `    ports: ["127.0.0.1:${o.appPort}:8080"]`,
    ...(o.extraLines ?? []),
    "    healthcheck:",
    `      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080${o.healthPath ?? "/health"}"]`,
    "      interval: 1s",
    "      timeout: 2s",
    `      retries: ${o.retries ?? 2}`,
    ...(o.startPeriod === null ? [] : [`      start_period: ${o.startPeriod ?? "1s"}`]),
    // busybox httpd as PID 1 ignores SIGTERM; without this every replacement waits Docker's 10 s stop timeout.
    `    stop_grace_period: ${o.stopGracePeriod ?? "1s"}`,
    "",
  ].join("\n");
}

export interface PipelineYamlOptions {
  registry: string;
  repository: string;
  /** `image.username` (for an htpasswd registry; the password comes from a flag/env, never this file). */
  username?: string;
  /** `image.source` */
  source?: string;
  /** Top-level lines between `image:` and `deploy:` (e.g. `defaultBranch: main`, a `build:` block). */
  sections?: string[];
  /** The test sshd on 127.0.0.1 (the Sshd helper fits). */
  sshd: { port: number; user: string; hostKeyFingerprint: string };
  directory: string;
  /** `deploy.composeFile`, relative to the source directory; leave out for inline `services`. */
  composeFile?: string;
  project: string;
  /** `deploy.service` (default `app`). */
  service?: string;
  /** Lines of an inline `deploy.services` mapping, indented 4 spaces (as they sit under `  services:`). */
  services?: string[];
  /** `deploy.health`: timeout defaults to 10 s, interval to 0.5 s. */
  health: { url: string; timeout?: number; interval?: number };
  /** `deploy.waitTimeout` (default 30). */
  waitTimeout?: number;
  keepImages?: number;
  fallback?: string;
  /** Further `deploy:` lines, 2-space indented. */
  extra?: string[];
}

export function pipelineYaml(o: PipelineYamlOptions): string {
  return [
    "image:",
    `  registry: ${o.registry}`,
    `  repository: ${o.repository}`,
    ...(o.username === undefined ? [] : [`  username: ${o.username}`]),
    ...(o.source === undefined ? [] : [`  source: ${o.source}`]),
    ...(o.sections ?? []),
    "deploy:",
    "  host: 127.0.0.1",
    `  port: ${o.sshd.port}`,
    `  user: ${o.sshd.user}`,
    `  hostKey: ${o.sshd.hostKeyFingerprint}`,
    `  directory: ${o.directory}`,
    ...(o.composeFile === undefined ? [] : [`  composeFile: ${o.composeFile}`]),
    `  project: ${o.project}`,
    `  service: ${o.service ?? "app"}`,
    ...(o.services === undefined ? [] : ["  services:", ...o.services]),
    "  health:",
    `    url: ${o.health.url}`,
    `    timeout: ${o.health.timeout ?? 10}`,
    `    interval: ${o.health.interval ?? 0.5}`,
    `  waitTimeout: ${o.waitTimeout ?? 30}`,
    ...(o.keepImages === undefined ? [] : [`  keepImages: ${o.keepImages}`]),
    ...(o.fallback === undefined ? [] : [`  fallback: ${o.fallback}`]),
    ...(o.extra ?? []),
    "",
  ].join("\n");
}
