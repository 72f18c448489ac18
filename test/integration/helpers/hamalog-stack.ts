// A local stand-in for Hamalog's production stack (tunnel → nginx → hamalog-app + hamalog-redis + mysql-hamalog,
// daemin-kim/hamalog-backend's docker-compose.yml), built without Docker Hub: nginx, redis and mariadb from
// Debian's packages (binary + the libraries ldd lists, like the Caddy image in ci/scripts/test-env.sh), the app
// and the tunnel from busybox. Also the compose/nginx/.env texts of that stack, its secrets, and ways to look
// inside it (DB rows, Redis keys, the uploads volume, the requests the tunnel saw) and to remove it.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { docker } from "./images.js";
import type { Sshd } from "./sshd.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures/hamalog");
const fixture = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

/** The stand-in images (the app is `hamalog-test/app:<version>`). */
export const HAMALOG_IMAGES = {
  nginx: "hamalog-test/nginx",
  redis: "hamalog-test/redis",
  mysql: "hamalog-test/mysql",
  tunnel: "hamalog-test/tunnel",
} as const;

/** Label holding a hash of everything an image is built from: an image whose label differs is rebuilt. */
const RECIPE_LABEL = "org.hamalog.test.recipe";
/** Label on the loop containers `startTunnelLoop` runs outside compose, so `removeHamalogStack` finds them. */
const LOOP_LABEL = "org.hamalog.test.project";

// ---------------------------------------------------------------------------------------------------------------
// Image builds

export interface ImageBuild {
  image: string;
  /** False when an image built from the same recipe already existed. */
  built: boolean;
  seconds: number;
}

interface Recipe {
  image: string;
  /** Debian packages to `apt-get download` and unpack (their direct lib* dependencies come along). */
  packages: readonly string[];
  /** Executables inside the unpacked packages, copied with every library `ldd` lists. */
  binaries: readonly string[];
  /** Directories or files inside the unpacked packages copied as they are. */
  trees?: readonly string[];
  links?: Readonly<Record<string, string>>;
  files?: Readonly<Record<string, { text: string; mode?: number }>>;
  dirs?: readonly string[];
  /** busybox applets linked in /bin (sh, wget, ... for entrypoints and healthchecks). */
  applets: readonly string[];
  /** `docker import --change` lines. */
  changes: readonly string[];
  /** STOPSIGNAL, which `docker import` cannot set (a one-line legacy `docker build` on top does). */
  stopSignal?: string;
}

const BASE_APPLETS = [
  "sh",
  "cat",
  "echo",
  "ls",
  "ps",
  "kill",
  "sleep",
  "usleep",
  "wget",
  "nc",
  "nslookup",
  "grep",
  "sed",
  "tr",
  "head",
  "tail",
  "wc",
  "cut",
  "mkdir",
  "rm",
  "mv",
  "chown",
  "date",
  "env",
  "id",
  "timeout",
  "printf",
] as const;

const PATH_ENV = "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20, ...opts });
}

function recipeHash(r: Recipe): string {
  return createHash("sha256").update(JSON.stringify(r)).digest("hex").slice(0, 16);
}

/** The recipe label and id of a local image, or null when there is none. */
function localImage(image: string): { recipe: string; id: string } | null {
  try {
    const [recipe, id] = docker([
      "image",
      "inspect",
      "--format",
      `{{ index .Config.Labels "${RECIPE_LABEL}" }} {{.Id}}`,
      image,
    ])
      .trim()
      .split(" ");
    return { recipe: recipe ?? "", id: id ?? "" };
  } catch {
    return null;
  }
}

/** `apt-get download` into `dir`; once more after `apt-get update` when the package lists are missing or stale. */
function aptDownload(dir: string, packages: readonly string[]): void {
  if (packages.length === 0) return;
  try {
    run("apt-get", ["download", "-qq", ...packages], { cwd: dir });
  } catch {
    try {
      run("apt-get", ["update", "-qq"]);
      run("apt-get", ["download", "-qq", ...packages], { cwd: dir });
    } catch (e) {
      throw new Error(
        `apt-get download ${packages.join(" ")} failed (needed to build the Hamalog stand-in images from Debian ` +
          `packages; this must run as root on Debian 12 with its mirror reachable): ${(e as Error).message}`,
      );
    }
  }
}

/** Direct library dependencies of the downloaded .debs (libc6 is taken from this host, as the loader is). */
function libraryDependencies(dir: string): string[] {
  const names = new Set<string>();
  for (const deb of readdirSync(dir).filter((f) => f.endsWith(".deb"))) {
    const fields = ["Depends", "Pre-Depends"].map((f) => run("dpkg-deb", ["-f", join(dir, deb), f]).trim());
    for (const dep of fields.join(",").split(",")) {
      const name = dep
        .split("|")[0]!
        .trim()
        .split(/[\s(:]/)[0]!;
      if ((name.startsWith("lib") || name === "zlib1g") && name !== "libc6") names.add(name);
    }
  }
  const have = new Set(readdirSync(dir).map((f) => f.split("_")[0]));
  return [...names].filter((n) => !have.has(n)).sort();
}

/** Every file `ldd` says `binary` loads (the loader included), resolved against the unpacked packages first. */
function sharedLibraries(binary: string, staging: string): string[] {
  const libDirs = ["usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu"].map((d) => join(staging, d));
  const out = run("ldd", [binary], { env: { ...process.env, LD_LIBRARY_PATH: libDirs.join(":") } });
  const missing = out.split("\n").filter((l) => l.includes("not found"));
  if (missing.length) {
    throw new Error(
      `${binary.slice(staging.length)} needs ${missing.map((l) => l.trim()).join(", ")}: no downloaded package ` +
        `provides it; add its Debian package to the recipe in test/integration/helpers/hamalog-stack.ts`,
    );
  }
  return [...out.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!);
}

function buildFromRecipe(r: Recipe): ImageBuild {
  const started = Date.now();
  const hash = recipeHash(r);
  const previous = localImage(r.image);
  if (previous?.recipe === hash) return { image: r.image, built: false, seconds: 0 };
  const dir = mkdtempSync(join(tmpdir(), "hamalog-stand-in-"));
  try {
    const debs = join(dir, "debs");
    const staging = join(dir, "staging");
    const root = join(dir, "rootfs");
    mkdirSync(debs);
    // apt drops to the _apt user for downloads; without access to the directory it warns and runs unsandboxed.
    chmodSync(dir, 0o755);
    spawnSync("chown", ["_apt", debs]);
    aptDownload(debs, r.packages);
    aptDownload(debs, libraryDependencies(debs));
    for (const deb of readdirSync(debs).filter((f) => f.endsWith(".deb")))
      run("dpkg-deb", ["-x", join(debs, deb), staging]);

    for (const d of ["bin", "etc", "tmp", "run", ...(r.dirs ?? [])]) mkdirSync(join(root, d), { recursive: true });
    chmodSync(join(root, "tmp"), 0o1777);
    copyFileSync("/bin/busybox", join(root, "bin/busybox"));
    chmodSync(join(root, "bin/busybox"), 0o755);
    const known = new Set(run("/bin/busybox", ["--list"]).split("\n"));
    for (const applet of r.applets) {
      if (!known.has(applet))
        throw new Error(`this busybox (/bin/busybox) has no applet ${applet} (building ${r.image})`);
      symlinkSync("busybox", join(root, "bin", applet));
    }

    const libraries = new Set<string>();
    for (const bin of r.binaries) {
      const from = join(staging, bin);
      if (!existsSync(from))
        throw new Error(`${bin} is not in the packages ${r.packages.join(" ")} (building ${r.image})`);
      mkdirSync(dirname(join(root, bin)), { recursive: true });
      copyFileSync(from, join(root, bin));
      for (const lib of sharedLibraries(from, staging)) libraries.add(lib);
    }
    for (const lib of libraries) {
      const inRoot = lib.startsWith(staging) ? lib.slice(staging.length) : lib;
      mkdirSync(dirname(join(root, inRoot)), { recursive: true });
      copyFileSync(lib, join(root, inRoot));
    }
    for (const tree of r.trees ?? []) cpSync(join(staging, tree), join(root, tree), { recursive: true });
    for (const [path, target] of Object.entries(r.links ?? {})) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      symlinkSync(target, join(root, path));
    }
    for (const [path, f] of Object.entries(r.files ?? {})) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), f.text, { mode: f.mode ?? 0o644 });
    }
    const tar = join(dir, "rootfs.tar");
    run("tar", ["-C", root, "-cf", tar, "."]);
    const changes = [...r.changes, PATH_ENV, `LABEL ${RECIPE_LABEL}=${hash}`];
    if (!r.stopSignal) {
      docker(["import", ...changes.flatMap((c) => ["--change", c]), tar, r.image]);
    } else {
      // Imported under a scratch tag first, so an interrupted build never leaves `image` with the recipe label.
      const base = `hamalog-test/build-scratch:${hash}`;
      docker(["import", ...changes.flatMap((c) => ["--change", c]), tar, base]);
      execFileSync("docker", ["build", "-q", "-t", r.image, "-"], {
        input: `FROM ${base}\nSTOPSIGNAL ${r.stopSignal}\n`,
        env: { ...process.env, DOCKER_BUILDKIT: "0" },
        stdio: ["pipe", "pipe", "pipe"],
      });
      docker(["rmi", base]);
    }
    if (previous) {
      // The image of an older recipe, now untagged; a container still using it keeps it alive.
      spawnSync("docker", ["rmi", previous.id]);
    }
    return { image: r.image, built: true, seconds: (Date.now() - started) / 1000 };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const PASSWD = [
  "root:x:0:0:root:/root:/bin/sh",
  "nobody:x:65534:65534:nobody:/nonexistent:/bin/false",
  "nginx:x:101:101:nginx:/var/lib/nginx:/bin/false",
  "mysql:x:999:999:MySQL Server:/var/lib/mysql:/bin/false",
  "",
].join("\n");
const GROUP = ["root:x:0:", "nogroup:x:65534:", "nginx:x:101:", "mysql:x:999:", ""].join("\n");
// glibc's default without this file asks DNS before /etc/hosts; Docker's /etc/hosts must win for `localhost`.
const NSSWITCH = "hosts: files dns\n";
const ETC = {
  "/etc/passwd": { text: PASSWD },
  "/etc/group": { text: GROUP },
  "/etc/nsswitch.conf": { text: NSSWITCH },
};

/**
 * Build `hamalog-test/nginx` from Debian's nginx-light (its `nginx` binary; `nginx-light` itself only adds the echo
 * module): the official nginx:alpine layout (conf.d/*.conf included, logs to stdout/stderr, STOPSIGNAL SIGQUIT)
 * and busybox `wget` for the real healthcheck. nginx resolves `hamalog-app` once, when it (re)loads its config.
 */
export function buildHamalogNginxImage(): ImageBuild {
  return buildFromRecipe({
    image: HAMALOG_IMAGES.nginx,
    packages: ["nginx", "nginx-common"],
    binaries: ["/usr/sbin/nginx"],
    trees: ["/etc/nginx/mime.types"],
    dirs: ["/var/lib/nginx", "/var/log/nginx", "/var/cache/nginx", "/usr/share/nginx/html"],
    links: { "/var/log/nginx/access.log": "/dev/stdout", "/var/log/nginx/error.log": "/dev/stderr" },
    files: {
      ...ETC,
      "/etc/nginx/nginx.conf": { text: fixture("nginx.conf") },
      "/etc/nginx/conf.d/default.conf": {
        text: 'server {\n    listen 80;\n    location / {\n        return 200 "nginx stand-in: mount a conf.d/default.conf\\n";\n    }\n}\n',
      },
    },
    applets: BASE_APPLETS,
    changes: ["EXPOSE 80", 'CMD ["nginx","-g","daemon off;"]'],
    // As the official image: `docker stop` asks for a graceful quit, letting requests in flight finish.
    stopSignal: "SIGQUIT",
  });
}

/** Build `hamalog-test/redis` from Debian's redis-server/redis-tools 7.0: redis-server and redis-cli, data in /data. */
export function buildHamalogRedisImage(): ImageBuild {
  return buildFromRecipe({
    image: HAMALOG_IMAGES.redis,
    packages: ["redis-tools"],
    // Debian's redis-server is a name for the redis-check-rdb binary (redis picks its role from argv[0]).
    binaries: ["/usr/bin/redis-check-rdb", "/usr/bin/redis-cli"],
    links: { "/usr/bin/redis-server": "redis-check-rdb" },
    dirs: ["/data"],
    files: ETC,
    applets: BASE_APPLETS,
    changes: ["WORKDIR /data", "EXPOSE 6379", 'CMD ["redis-server"]'],
  });
}

/**
 * Build `hamalog-test/mysql` from Debian's mariadb-server-core + mariadb-client (10.11): on an empty
 * /var/lib/mysql its entrypoint creates root, MYSQL_DATABASE and MYSQL_USER from the env (~1.5 s), then runs
 * mariadbd; `mysqladmin` and `mariadb` are there for the healthcheck and for tests.
 */
export function buildHamalogMysqlImage(): ImageBuild {
  const share = "/usr/share/mysql";
  return buildFromRecipe({
    image: HAMALOG_IMAGES.mysql,
    packages: ["mariadb-server-core", "mariadb-client-core", "mariadb-client"],
    binaries: ["/usr/sbin/mariadbd", "/usr/bin/mariadb", "/usr/bin/mariadb-admin"],
    trees: [
      `${share}/english`,
      `${share}/charsets`,
      ...["mysql_system_tables.sql", "mysql_performance_tables.sql", "mysql_system_tables_data.sql"].map(
        (f) => `${share}/${f}`,
      ),
    ],
    links: {
      "/usr/sbin/mysqld": "mariadbd",
      "/usr/bin/mysql": "mariadb",
      "/usr/bin/mysqladmin": "mariadb-admin",
    },
    dirs: ["/var/lib/mysql", "/run/mysqld"],
    files: {
      ...ETC,
      "/etc/mysql/my.cnf": {
        text: [
          "[client-server]",
          "socket=/run/mysqld/mysqld.sock",
          "[mariadbd]",
          "datadir=/var/lib/mysql",
          "lc-messages-dir=/usr/share/mysql",
          "bind-address=0.0.0.0",
          // The official images skip reverse DNS too: a Docker peer's name lookup would only slow logins down.
          "skip-name-resolve",
          // The app's health probe opens and drops a connection every second; level 2 logs each as a warning.
          "log_warnings=1",
          // Small and quick to create; the test data is tiny.
          "innodb_buffer_pool_size=32M",
          "innodb_log_file_size=16M",
          "",
        ].join("\n"),
      },
      "/usr/local/bin/docker-entrypoint.sh": { text: fixture("mysql-entrypoint.sh"), mode: 0o755 },
    },
    applets: [...BASE_APPLETS, "chmod"],
    changes: [
      "EXPOSE 3306",
      'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
      'CMD ["mariadbd"]',
      "VOLUME /var/lib/mysql",
    ],
  });
}

/** Build `hamalog-test/tunnel`: busybox with `tunnel run` (the request loop of tunnel.sh) and wget for tests. */
export function buildHamalogTunnelImage(): ImageBuild {
  return buildFromRecipe({
    image: HAMALOG_IMAGES.tunnel,
    packages: [],
    binaries: [],
    dirs: ["/out"],
    files: { ...ETC, "/usr/local/bin/tunnel": { text: fixture("tunnel.sh"), mode: 0o755 } },
    applets: BASE_APPLETS,
    changes: ['CMD ["tunnel","run"]'],
  });
}

export interface HamalogAppOptions {
  /** Seconds port 8080 stays closed after start (the JVM and Spring context); default 2. */
  closedSeconds?: number;
  /** Then seconds /actuator/health answers 503; -1: never healthy (a broken build). Default 2. */
  unhealthySeconds?: number;
  /** How long the app retries the database before it exits 1 (Hikari's pool start); default 10. */
  dbWaitSeconds?: number;
}

/** Variables without which the app exits 1 ("APPLICATION FAILED TO START"): Spring's unresolved placeholders. */
export const HAMALOG_REQUIRED_ENV = [
  "SPRING_DATASOURCE_URL",
  "SPRING_DATASOURCE_USERNAME",
  "SPRING_DATASOURCE_PASSWORD",
  "SPRING_DATA_REDIS_PASSWORD",
  "JWT_SECRET",
  "HAMALOG_ENCRYPTION_KEY",
  "KAKAO_CLIENT_ID",
  "KAKAO_CLIENT_SECRET",
] as const;

/** Variables /env-check reports by default (`?names=A,B` asks for others). */
export const HAMALOG_ENV_CHECK = [
  ...HAMALOG_REQUIRED_ENV,
  "SPRING_PROFILES_ACTIVE",
  "SPRING_DATA_REDIS_HOST",
  "JWT_EXPIRY",
  "JWT_REFRESH_TOKEN_EXPIRY",
  "KAKAO_REDIRECT_URI",
  "HAMALOG_ENV_FILE",
] as const;

export const hamalogAppImage = (version: string): string => `hamalog-test/app:${version}`;

/**
 * Build `hamalog-test/app:<version>`, the Spring Boot stand-in (busybox): exits 1 when a required variable is
 * missing or the database cannot be reached at start; port 8080 closed `closedSeconds`, then /actuator/health 503
 * for `unhealthySeconds`, then 200 while MySQL answers and Redis accepts SPRING_DATA_REDIS_PASSWORD; serves
 * /version, /env-check, /upload?name=, /uploads/<name>, /sleep?ms=; SIGTERM drains requests in flight.
 */
export function buildHamalogAppImage(version: string, opts: HamalogAppOptions = {}): ImageBuild {
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(version)) throw new Error(`app version ${version}: not a tag`);
  return buildFromRecipe({
    image: hamalogAppImage(version),
    packages: [],
    binaries: [],
    dirs: ["/app", "/data/hamalog/images"],
    files: {
      ...ETC,
      "/app/version": { text: `${version}\n` },
      "/app/lib.sh": { text: fixture("app-lib.sh") },
      "/app/start.sh": { text: fixture("app-start.sh"), mode: 0o755 },
      "/app/handler.sh": { text: fixture("app-handler.sh"), mode: 0o755 },
      "/usr/bin/curl": { text: fixture("curl.sh"), mode: 0o755 },
    },
    applets: [...BASE_APPLETS, "sha256sum", "base64", "awk", "touch"],
    changes: [
      [
        "ENV SPRING_PROFILES_ACTIVE=prod",
        `STARTUP_CLOSED_SECONDS=${opts.closedSeconds ?? 2}`,
        `STARTUP_UNHEALTHY_SECONDS=${opts.unhealthySeconds ?? 2}`,
        `DB_WAIT_SECONDS=${opts.dbWaitSeconds ?? 10}`,
        `HAMALOG_REQUIRED_ENV="${HAMALOG_REQUIRED_ENV.join(" ")}"`,
        `HAMALOG_ENV_CHECK="${HAMALOG_ENV_CHECK.join(" ")}"`,
      ].join(" "),
      "EXPOSE 8080",
      'CMD ["/app/start.sh"]',
      `LABEL org.opencontainers.image.version=${JSON.stringify(version)}`,
    ],
  });
}

/** Build (or find) every stand-in image: nginx, redis, mysql, tunnel, and the app for each version. */
export function buildHamalogImages(appVersions: readonly string[], app: HamalogAppOptions = {}): ImageBuild[] {
  return [
    buildHamalogNginxImage(),
    buildHamalogRedisImage(),
    buildHamalogMysqlImage(),
    buildHamalogTunnelImage(),
    ...appVersions.map((v) => buildHamalogAppImage(v, app)),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Secrets and the stack's files

/** The secrets Hamalog's deploy-main.yml passes to the server (its `deploy` job's env), by name. */
export const HAMALOG_SECRET_NAMES = [
  "MYSQL_ROOT_PASSWORD",
  "DB_NAME",
  "DB_USERNAME",
  "DB_PASSWORD",
  "JWT_SECRET",
  "JWT_EXPIRY",
  "JWT_REFRESH_TOKEN_EXPIRY",
  "KAKAO_CLIENT_ID",
  "KAKAO_CLIENT_SECRET",
  "KAKAO_REDIRECT_URI",
  "CLOUDFLARE_TUNNEL_TOKEN",
  "SPRING_DATA_REDIS_PASSWORD",
  "HAMALOG_ENCRYPTION_KEY",
] as const;
export type HamalogSecretName = (typeof HAMALOG_SECRET_NAMES)[number];
export type HamalogSecrets = Record<HamalogSecretName, string>;

/**
 * Sample values for every secret, recognisable by prefix (`db-pw-…`, `redis-pw-…`) and random otherwise; the two
 * keys are base64 of 32 bytes (`+`, `/`, `=` included) as `openssl rand -base64 32` makes them. No `$`, quote,
 * space or `#`: compose interpolates `$` inside .env files and would change such values.
 */
export function sampleHamalogSecrets(random: (bytes: number) => Buffer = randomBytes): HamalogSecrets {
  const hex = (n: number) => random(n).toString("hex");
  const tunnel = {
    a: hex(16),
    t: `${hex(4)}-${hex(2)}-${hex(2)}-${hex(2)}-${hex(6)}`,
    s: random(32).toString("base64"),
  };
  return {
    MYSQL_ROOT_PASSWORD: `root-pw-${hex(12)}`,
    DB_NAME: "Hamalog",
    DB_USERNAME: "hamalog_user",
    DB_PASSWORD: `db-pw-${hex(12)}`,
    JWT_SECRET: random(32).toString("base64"),
    JWT_EXPIRY: "900000",
    JWT_REFRESH_TOKEN_EXPIRY: "604800000",
    KAKAO_CLIENT_ID: `kakao-id-${hex(8)}`,
    KAKAO_CLIENT_SECRET: `kakao-secret-${hex(12)}`,
    KAKAO_REDIRECT_URI: "https://api.hamalog.shop/oauth2/auth/kakao/callback",
    CLOUDFLARE_TUNNEL_TOKEN: Buffer.from(JSON.stringify(tunnel)).toString("base64"),
    SPRING_DATA_REDIS_PASSWORD: `redis-pw-${hex(12)}`,
    HAMALOG_ENCRYPTION_KEY: random(32).toString("base64"),
  };
}

export interface HamalogStackOptions {
  secrets: HamalogSecrets;
  /** `image:` of hamalog-app (default `hamalog-test/app:v1`). */
  appImage?: string;
  /** Other stand-in images (default HAMALOG_IMAGES). */
  images?: Partial<Record<keyof typeof HAMALOG_IMAGES, string>>;
  /** Healthcheck `interval` of every service (default `1s`; the real file has 30s). */
  healthInterval?: string;
  /** hamalog-app's healthcheck `start_period` (default `60s`, as in the real file). */
  appStartPeriod?: string;
  /** Path the tunnel's request loop GETs through nginx (default `/version`). */
  tunnelPath?: string;
  /** Milliseconds between the tunnel's requests (default 50). */
  tunnelIntervalMs?: number;
  /** Publish MySQL on 127.0.0.1:PORT as the real file does with 3306 (default: not published). */
  mysqlHostPort?: number;
}

/** File name → text, for a directory the stack runs from (`docker compose --project-directory DIR`). */
export interface HamalogStackFiles {
  "docker-compose.yml": string;
  "nginx-docker.conf": string;
  /** Read by compose for `${VAR}` interpolation, as the deploy job's environment is on the real server. */
  ".env": string;
  /** hamalog-app's `env_file`. */
  ".env.prod": string;
}

/**
 * Hamalog's docker-compose.yml with the stand-ins: the same service names, `depends_on` conditions, env_file,
 * `${VAR}` interpolations, `container_name: hamalog-redis`, named volumes, healthchecks (1 s apart),
 * `deploy.resources`, `restart: unless-stopped`; MySQL without its SSL flags and host port; the tunnel's
 * request loop logs to ./tunnel/requests.log.
 */
export function hamalogComposeFile(o: Omit<HamalogStackOptions, "secrets">): string {
  const img = { ...HAMALOG_IMAGES, ...o.images };
  const every = o.healthInterval ?? "1s";
  return `# Hamalog's production stack (daemin-kim/hamalog-backend docker-compose.yml) with local stand-in images.
services:

  tunnel:
    image: ${img.tunnel}
    restart: unless-stopped
    command: tunnel run
    environment:
      - TUNNEL_TOKEN=\${CLOUDFLARE_TUNNEL_TOKEN}
      # Stand-in only: the users' requests it sends through nginx, logged one line each.
      - TUNNEL_TARGET=http://nginx${o.tunnelPath ?? "/version"}
      - TUNNEL_INTERVAL_MS=${o.tunnelIntervalMs ?? 50}
      - TUNNEL_LOG=/out/requests.log
    volumes:
      - ./tunnel:/out
    depends_on:
      nginx:
        condition: service_started
    networks:
      - default

  nginx:
    image: ${img.nginx}
    expose:
      - "80"
    volumes:
      - ./nginx-docker.conf:/etc/nginx/conf.d/default.conf:ro
    depends_on:
      hamalog-app:
        condition: service_healthy
    restart: unless-stopped
    healthcheck:
      test: ["CMD-SHELL", "wget --quiet --spider http://localhost/actuator/health || exit 1"]
      interval: ${every}
      timeout: 10s
      start_period: 90s
      retries: 3

  hamalog-app:
    image: ${o.appImage ?? hamalogAppImage("v1")}
    expose:
      - "8080"
    env_file:
      - .env.prod
    environment:
      - SPRING_PROFILES_ACTIVE=prod
      - SPRING_DATASOURCE_URL=jdbc:mysql://mysql-hamalog:3306/\${DB_NAME}?useSSL=true&requireSSL=true&characterEncoding=UTF-8&serverTimezone=UTC
      - SPRING_DATASOURCE_USERNAME=\${DB_USERNAME}
      - SPRING_DATASOURCE_PASSWORD=\${DB_PASSWORD}
      - SPRING_DATA_REDIS_HOST=hamalog-redis
      - SPRING_DATA_REDIS_PORT=6379
      - SPRING_DATA_REDIS_PASSWORD=\${SPRING_DATA_REDIS_PASSWORD}
      - JWT_SECRET=\${JWT_SECRET}
      - JWT_EXPIRY=\${JWT_EXPIRY}
      - JWT_REFRESH_TOKEN_EXPIRY=\${JWT_REFRESH_TOKEN_EXPIRY}
      - HAMALOG_ENCRYPTION_KEY=\${HAMALOG_ENCRYPTION_KEY}
      - KAKAO_CLIENT_ID=\${KAKAO_CLIENT_ID}
      - KAKAO_CLIENT_SECRET=\${KAKAO_CLIENT_SECRET}
      - KAKAO_REDIRECT_URI=\${KAKAO_REDIRECT_URI}
      - FRONTEND_URL=\${FRONTEND_URL:-https://api.hamalog.shop}
      - ALLOWED_ORIGINS=\${ALLOWED_ORIGINS:-https://api.hamalog.shop,http://localhost:3000}
    depends_on:
      mysql-hamalog:
        condition: service_healthy
      hamalog-redis:
        condition: service_healthy
    volumes:
      - hamalog-uploads:/data/hamalog/images
    restart: unless-stopped
    deploy:
      resources:
        limits:
          cpus: '2.0'
          memory: 1536M
        reservations:
          cpus: '0.5'
          memory: 512M
    healthcheck:
      test: ["CMD", "curl", "-fsS", "http://localhost:8080/actuator/health"]
      interval: ${every}
      timeout: 10s
      start_period: ${o.appStartPeriod ?? "60s"}
      retries: 3

  hamalog-redis:
    image: ${img.redis}
    container_name: hamalog-redis
    expose:
      - "6379"
    command: >
      redis-server
      --requirepass \${SPRING_DATA_REDIS_PASSWORD}
      --appendonly yes
      --maxmemory 256mb
      --maxmemory-policy allkeys-lru
      --protected-mode yes
    volumes:
      - redis-data:/data
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "redis-cli", "--no-auth-warning", "-a", "\${SPRING_DATA_REDIS_PASSWORD}", "ping"]
      interval: ${every}
      timeout: 10s
      retries: 3

  mysql-hamalog:
    image: ${img.mysql}
    expose:
      - "3306"
${o.mysqlHostPort === undefined ? "" : `    ports:\n      - "127.0.0.1:${o.mysqlHostPort}:3306"\n`}    environment:
      - MYSQL_ROOT_PASSWORD=\${MYSQL_ROOT_PASSWORD}
      - MYSQL_DATABASE=\${DB_NAME}
      - MYSQL_USER=\${DB_USERNAME}
      - MYSQL_PASSWORD=\${DB_PASSWORD}
      - MYSQL_ROOT_HOST=localhost
    command: >
      --character-set-server=utf8mb4
      --collation-server=utf8mb4_unicode_ci
    volumes:
      - mysql-data:/var/lib/mysql
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "mysqladmin", "ping", "-h", "localhost", "-u", "root", "-p\${MYSQL_ROOT_PASSWORD:-root_password}"]
      interval: ${every}
      timeout: 10s
      retries: 3

volumes:
  mysql-data:
  redis-data:
  hamalog-uploads:
`;
}

/**
 * Hamalog's nginx-docker.conf cut to what a deploy meets: the upstream BY SERVICE NAME (`hamalog-app:8080`, resolved
 * once when nginx starts or reloads; a name that does not resolve stops nginx with `host not found in upstream`),
 * keepalive to it, and its two proxied locations. Left out: real-IP, rate limits (10 r/s per client: a loop from
 * one container would get 429s), bot/path blocking, security headers.
 */
export function hamalogNginxConf(): string {
  const proxied = [
    "        proxy_pass http://hamalog_backend;",
    "        proxy_set_header Host $host;",
    "        proxy_set_header X-Real-IP $remote_addr;",
    "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "        proxy_set_header X-Forwarded-Proto https;",
  ];
  return [
    "# Hamalog's nginx-docker.conf (daemin-kim/hamalog-backend), reduced to its proxying.",
    "upstream hamalog_backend {",
    "    server hamalog-app:8080;",
    "    keepalive 32;",
    "}",
    "",
    "server {",
    "    listen 80;",
    "    server_name _;",
    "",
    "    location /actuator/health {",
    ...proxied,
    "        access_log off;",
    "    }",
    "",
    "    location / {",
    ...proxied,
    "        proxy_http_version 1.1;",
    '        proxy_set_header Connection "";',
    "        proxy_connect_timeout 30s;",
    "        proxy_send_timeout 60s;",
    "        proxy_read_timeout 60s;",
    "        client_max_body_size 10M;",
    "    }",
    "}",
    "",
  ].join("\n");
}

const envLines = (vars: Record<string, string>): string =>
  Object.entries(vars)
    .map(([k, v]) => `${k}=${v}\n`)
    .join("");

/** The `.env` compose reads for interpolation: the 13 secrets. */
export function hamalogDotEnv(secrets: HamalogSecrets): string {
  return (
    "# Interpolated into docker-compose.yml (the deploy job's environment on the real server).\n" + envLines(secrets)
  );
}

/**
 * hamalog-app's env_file, shaped like Hamalog's .env.example: its values are the secrets again (the service's
 * `environment:` wins over them), SPRING_DATA_REDIS_HOST=redis as in the example (overridden to hamalog-redis), and
 * HAMALOG_ENV_FILE, which only this file sets, so /env-check shows the file was read.
 */
export function hamalogEnvProd(secrets: HamalogSecrets): string {
  const { CLOUDFLARE_TUNNEL_TOKEN: _tunnel, ...app } = secrets;
  return (
    "# hamalog-app's env_file (.env.example's shape).\n" +
    envLines({
      ...app,
      SPRING_DATASOURCE_USERNAME: secrets.DB_USERNAME,
      SPRING_DATASOURCE_PASSWORD: secrets.DB_PASSWORD,
      SPRING_DATA_REDIS_HOST: "redis",
      SPRING_DATA_REDIS_PORT: "6379",
      SPRING_PROFILES_ACTIVE: "prod",
      FILE_UPLOAD_DIR: "/data/hamalog/images",
      HAMALOG_ENV_FILE: ".env.prod",
    })
  );
}

/** Every file of the stack, as text. */
export function hamalogStackFiles(o: HamalogStackOptions): HamalogStackFiles {
  return {
    "docker-compose.yml": hamalogComposeFile(o),
    "nginx-docker.conf": hamalogNginxConf(),
    ".env": hamalogDotEnv(o.secrets),
    ".env.prod": hamalogEnvProd(o.secrets),
  };
}

export interface HamalogPipelineOptions {
  registry: string;
  repository: string;
  sshd: Sshd;
  directory: string;
  project: string;
  strategy: "blue-green" | "recreate";
  /** blue-green's Caddy image. */
  caddy?: string;
  /** deploy/env: plain values. */
  env?: Record<string, string>;
  /** deploy/secrets: names. */
  secrets: readonly string[];
}

/**
 * Hamalog's pipeline.yaml for the stand-in stack (docs/adopting.md's shape): the template docker-compose.yml and
 * nginx-docker.conf beside it, over the test sshd, the app's plain values and its secrets by name.
 */
export function hamalogPipelineYaml(o: HamalogPipelineOptions): string {
  return [
    "image:",
    `  registry: ${o.registry}`,
    `  repository: ${o.repository}`,
    "deploy:",
    "  host: 127.0.0.1",
    `  port: ${o.sshd.port}`,
    `  user: ${o.sshd.user}`,
    `  hostKey: ${o.sshd.hostKeyFingerprint}`,
    `  directory: ${o.directory}`,
    "  composeFile: docker-compose.yml",
    "  files: [nginx-docker.conf]",
    `  project: ${o.project}`,
    "  service: hamalog-app",
    `  strategy: ${o.strategy}`,
    ...(o.strategy === "blue-green"
      ? [
          `  proxy: {image: ${o.caddy ?? "hamalog-test/caddy:2.6.2"}, drainSeconds: 1}`,
          "  health: {url: http://127.0.0.1:8080/actuator/health, timeout: 60, interval: 0.5}",
        ]
      : []),
    "  waitTimeout: 120",
    ...(o.env && Object.keys(o.env).length
      ? ["  env:", ...Object.entries(o.env).map(([k, v]) => `    ${k}: ${JSON.stringify(v)}`)]
      : []),
    `  secrets: [${o.secrets.join(", ")}]`,
    "",
  ].join("\n");
}

/** Write the files into `dir` (and the ./tunnel directory the loop logs to); returns the compose file's path. */
export function writeHamalogStackFiles(dir: string, files: HamalogStackFiles): string {
  mkdirSync(join(dir, "tunnel"), { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text, { mode: 0o600 });
  return join(dir, "docker-compose.yml");
}

// ---------------------------------------------------------------------------------------------------------------
// Running and looking inside the stack

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** `docker compose --project-directory dir -p project ARGS`, never throwing: the caller reads the exit code. */
export function hamalogCompose(dir: string, project: string, args: readonly string[]): Ran {
  const r = spawnSync("docker", ["compose", "--project-directory", dir, "-p", project, ...args], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return { code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** The compose project's default network (where service names resolve). */
export const hamalogNetwork = (project: string): string => `${project}_default`;

/** Ids of a service's containers (running only unless `all`). */
export function serviceContainers(project: string, service: string, all = false): string[] {
  return docker([
    "ps",
    ...(all ? ["-a"] : []),
    "-q",
    "--filter",
    `label=com.docker.compose.project=${project}`,
    "--filter",
    `label=com.docker.compose.service=${service}`,
  ])
    .split("\n")
    .filter(Boolean);
}

function oneContainer(project: string, service: string): string {
  const ids = serviceContainers(project, service);
  if (ids.length !== 1) {
    throw new Error(`expected one running ${service} container in compose project ${project}, found ${ids.length}`);
  }
  return ids[0]!;
}

/** A container's health (`healthy`, `starting`, `unhealthy`) or state when it has no healthcheck. */
export function containerHealth(id: string): string {
  return docker([
    "inspect",
    "--format",
    "{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}",
    id,
  ]).trim();
}

/** GET `url` from a throwaway container on the stack's network (as a peer of nginx would); never throws. */
export function getInNetwork(project: string, url: string): { ok: boolean; body: string; error: string } {
  const r = spawnSync(
    "docker",
    [
      "run",
      "--rm",
      "--network",
      hamalogNetwork(project),
      HAMALOG_IMAGES.tunnel,
      "timeout",
      "20",
      "wget",
      "-q",
      "-O-",
      url,
    ],
    { encoding: "utf8" },
  );
  return { ok: r.status === 0, body: r.stdout ?? "", error: (r.stderr ?? "").trim() };
}

export interface EnvCheck {
  vars: Record<string, { set: false } | { set: true; len: number; sha256: string }>;
  /** `reachable mysql-hamalog:3306 10.11.x-MariaDB…` or `unreachable …`. */
  db: string;
  /** `auth-ok hamalog-redis:6379`, `auth-failed (…)` or `unreachable …`. */
  redis: string;
  version: string;
}

/** Parse the app's /env-check answer. */
export function parseEnvCheck(text: string): EnvCheck {
  const out: EnvCheck = { vars: {}, db: "", redis: "", version: "" };
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    const [, name, rest] = m as unknown as [string, string, string];
    if (name === "db") out.db = rest;
    else if (name === "redis") out.redis = rest;
    else if (name === "version") out.version = rest;
    else if (rest === "missing") out.vars[name] = { set: false };
    else {
      const v = /^set len=(\d+) sha256=([0-9a-f]{64})$/.exec(rest);
      if (v) out.vars[name] = { set: true, len: Number(v[1]), sha256: v[2]! };
    }
  }
  return out;
}

export const sha256 = (value: string): string => createHash("sha256").update(value).digest("hex");

/** Run SQL in mysql-hamalog with `mariadb -N -B` as the app's user on DB_NAME (or as root); returns its output. */
export function mysqlQuery(project: string, secrets: HamalogSecrets, sql: string, as: "app" | "root" = "app"): string {
  const [user, password] =
    as === "root" ? ["root", secrets.MYSQL_ROOT_PASSWORD] : [secrets.DB_USERNAME, secrets.DB_PASSWORD];
  // MYSQL_PWD keeps the password out of the container's process list.
  return docker([
    "exec",
    "-e",
    `MYSQL_PWD=${password}`,
    oneContainer(project, "mysql-hamalog"),
    "mariadb",
    "-h",
    "localhost",
    "-u",
    user,
    "-N",
    "-B",
    secrets.DB_NAME,
    "-e",
    sql,
  ]).trim();
}

const sqlString = (s: string): string => `'${s.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;

/** Insert a row (note) into `deploy_probe` in DB_NAME, creating the table the first time. */
export function insertProbeRow(project: string, secrets: HamalogSecrets, note: string): void {
  mysqlQuery(
    project,
    secrets,
    "CREATE TABLE IF NOT EXISTS deploy_probe (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(255) NOT NULL); " +
      `INSERT INTO deploy_probe (note) VALUES (${sqlString(note)});`,
  );
}

/** The notes in `deploy_probe`, oldest first. */
export function readProbeRows(project: string, secrets: HamalogSecrets): string[] {
  return mysqlQuery(project, secrets, "SELECT note FROM deploy_probe ORDER BY id").split("\n").filter(Boolean);
}

/** `redis-cli ARGS` in hamalog-redis, authenticated with SPRING_DATA_REDIS_PASSWORD; returns its output. */
export function redisCli(project: string, secrets: HamalogSecrets, args: readonly string[]): string {
  return docker([
    "exec",
    "-e",
    `REDISCLI_AUTH=${secrets.SPRING_DATA_REDIS_PASSWORD}`,
    oneContainer(project, "hamalog-redis"),
    "redis-cli",
    ...args,
  ]).trim();
}

export const redisSet = (project: string, secrets: HamalogSecrets, key: string, value: string): string =>
  redisCli(project, secrets, ["SET", key, value]);
export const redisGet = (project: string, secrets: HamalogSecrets, key: string): string =>
  redisCli(project, secrets, ["GET", key]);

/** Store an upload through nginx → app (GET /upload?name=NAME); returns the app's answer. */
export function uploadThroughNginx(project: string, name: string): string {
  const r = getInNetwork(project, `http://nginx/upload?name=${encodeURIComponent(name)}`);
  if (!r.ok) throw new Error(`upload ${name} through nginx failed: ${r.error}`);
  return r.body.trim();
}

/** A file in the project's hamalog-uploads volume, read without the app (null when absent). */
export function readUploadsVolume(project: string, name: string): string | null {
  const r = spawnSync(
    "docker",
    ["run", "--rm", "-v", `${project}_hamalog-uploads:/v:ro`, HAMALOG_IMAGES.tunnel, "cat", `/v/${name}`],
    { encoding: "utf8" },
  );
  return r.status === 0 ? r.stdout : null;
}

/** The compose project that owns the container named `hamalog-redis` (a fixed name, as in the real file), if any. */
export function hamalogRedisOwner(): string | null {
  const r = spawnSync(
    "docker",
    ["inspect", "--format", '{{ index .Config.Labels "com.docker.compose.project" }}', "hamalog-redis"],
    { encoding: "utf8" },
  );
  return r.status === 0 ? r.stdout.trim() : null;
}

/** Remove what a stack left on this engine: its containers (and tunnel loops), volumes and networks. */
export function removeHamalogStack(project: string): void {
  const byLabel = (kind: "ps" | "volume" | "network", label: string): string[] =>
    docker(
      kind === "ps" ? ["ps", "-aq", "--filter", `label=${label}`] : [kind, "ls", "-q", "--filter", `label=${label}`],
    )
      .split("\n")
      .filter(Boolean);
  const containers = [
    ...byLabel("ps", `com.docker.compose.project=${project}`),
    ...byLabel("ps", `${LOOP_LABEL}=${project}`),
  ];
  if (containers.length) docker(["rm", "-f", "-v", ...containers]);
  const volumes = byLabel("volume", `com.docker.compose.project=${project}`);
  if (volumes.length) docker(["volume", "rm", "-f", ...volumes]);
  for (const net of byLabel("network", `com.docker.compose.project=${project}`)) {
    try {
      docker(["network", "rm", net]);
    } catch {
      // a container outside the project still attached: it is not ours to remove
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The tunnel's request log

/** This kernel's uptime in ms: the clock of the tunnel's log lines (containers share the host's kernel). */
export function uptimeMs(): number {
  return Math.round(Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000);
}

export interface TunnelLine {
  seq: number;
  startMs: number;
  endMs: number;
  ok: boolean;
  /** The first line of the body, or wget's error (`server returned error: HTTP/1.1 502 Bad Gateway`). */
  detail: string;
}

export interface TunnelStats {
  requests: number;
  failed: number;
  /** From the start of the first request of the longest run of failures to the start of the next success. */
  longestOutageMs: number;
  /** Each distinct answer body, in the order first seen. */
  answers: string[];
  /** When each answer was first seen (uptime ms). */
  firstSeenMs: Record<string, number>;
  /** How often consecutive successful answers differed (v1 → v2 is 1; v1 → v2 → v1 is 2). */
  switches: number;
  /** A few failure reasons, for assertion messages. */
  errors: string[];
  lines: TunnelLine[];
}

/** Parse a tunnel log, keeping requests that started within [fromMs, toMs] (uptime ms, see `uptimeMs`). */
export function readTunnelLog(file: string, window: { fromMs?: number; toMs?: number } = {}): TunnelStats {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  const lines: TunnelLine[] = [];
  for (const raw of text.split("\n")) {
    const m = /^(\d+) (\d+) (\d+) (OK|FAIL) ?(.*)$/.exec(raw);
    if (!m) continue;
    const line = { seq: +m[1]!, startMs: +m[2]!, endMs: +m[3]!, ok: m[4] === "OK", detail: m[5]! };
    if (line.startMs >= (window.fromMs ?? 0) && line.startMs <= (window.toMs ?? Infinity)) lines.push(line);
  }
  const stats: TunnelStats = {
    requests: lines.length,
    failed: 0,
    longestOutageMs: 0,
    answers: [],
    firstSeenMs: {},
    switches: 0,
    errors: [],
    lines,
  };
  let failingSince: number | null = null;
  let last: string | null = null;
  for (const l of lines) {
    if (l.ok) {
      if (!stats.answers.includes(l.detail)) {
        stats.answers.push(l.detail);
        stats.firstSeenMs[l.detail] = l.startMs;
      }
      if (last !== null && last !== l.detail) stats.switches++;
      last = l.detail;
      if (failingSince !== null) stats.longestOutageMs = Math.max(stats.longestOutageMs, l.startMs - failingSince);
      failingSince = null;
    } else {
      stats.failed++;
      if (stats.errors.length < 5) stats.errors.push(`#${l.seq}: ${l.detail}`);
      failingSince ??= l.startMs;
    }
  }
  const end = lines.at(-1)?.endMs;
  if (failingSince !== null && end !== undefined) {
    stats.longestOutageMs = Math.max(stats.longestOutageMs, end - failingSince);
  }
  return stats;
}

/** The log of the compose service `tunnel` of a stack written by `writeHamalogStackFiles(dir, …)`. */
export const tunnelLogFile = (dir: string): string => join(dir, "tunnel", "requests.log");

export interface TunnelLoop {
  container: string;
  logFile: string;
  /** Stats of the requests so far (optionally within a window). */
  stats(window?: { fromMs?: number; toMs?: number }): TunnelStats;
  /** Stop the loop (its container is removed) and return the stats of everything it sent. */
  stop(): TunnelStats;
}

/**
 * Run a request loop inside the stack's network, outside compose (a deploy's `up --remove-orphans` leaves it
 * alone): GET `url` (default http://nginx/version) every `intervalMs` (default 50), logged in `dir`/NAME.log.
 */
export function startTunnelLoop(o: { project: string; dir: string; url?: string; intervalMs?: number }): TunnelLoop {
  const name = `${o.project}-loop-${randomBytes(3).toString("hex")}`;
  mkdirSync(o.dir, { recursive: true });
  const logFile = join(o.dir, `${name}.log`);
  const container = docker([
    "run",
    "-d",
    "--name",
    name,
    "--label",
    `${LOOP_LABEL}=${o.project}`,
    "--network",
    hamalogNetwork(o.project),
    "-v",
    `${o.dir}:/out`,
    "-e",
    "TUNNEL_TOKEN=loop",
    "-e",
    `TUNNEL_TARGET=${o.url ?? "http://nginx/version"}`,
    "-e",
    `TUNNEL_INTERVAL_MS=${o.intervalMs ?? 50}`,
    "-e",
    `TUNNEL_LOG=/out/${name}.log`,
    HAMALOG_IMAGES.tunnel,
  ]).trim();
  return {
    container,
    logFile,
    stats: (window) => readTunnelLog(logFile, window),
    stop: () => {
      // TERM ends the loop after the request in flight, so the last line is complete.
      docker(["stop", "-t", "15", container]);
      docker(["rm", "-f", container]);
      return readTunnelLog(logFile);
    },
  };
}
