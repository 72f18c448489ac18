// A small token service on 127.0.0.1 for a real distribution registry configured with `auth.token`: it checks
// Basic credentials and signs RS256 JWTs whose `x5c` header carries a self-signed certificate that is also the
// registry's rootcertbundle (distribution 2.8 verifies the chain against the bundle). Wrong credentials get
// 401 from the token service; no credentials get a token with no access (like Docker Hub / GHCR for private
// images), which the registry then refuses with 401.
import { execFileSync } from "node:child_process";
import { createPrivateKey, randomUUID, sign, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import type { RegistryAuth } from "./registry.js";

export interface TokenServerOptions {
  users: Record<string, string>;
  /** Token lifetime in seconds, stated as `expires_in` and the JWT `exp` (default 300). */
  expiresIn?: number;
  service?: string;
  issuer?: string;
}

export interface TokenServer {
  url: string;
  port: number;
  /** The `auth.token` block for startRegistry. */
  registryAuth: RegistryAuth;
  /** Token requests served so far, with whether they carried credentials and the scope asked for. */
  requests: { user?: string; scope?: string; status: number }[];
  /** In-process server: stopping closes its socket (no child process). */
  stop(): Promise<void>;
}

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

function basicUser(req: IncomingMessage): { user: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(h.slice(6), "base64").toString("utf8");
  const i = decoded.indexOf(":");
  return i < 0 ? undefined : { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  const dir = mkdtempSync(join(tmpdir(), "hamalog-token-"));
  const keyFile = join(dir, "key.pem");
  const certFile = join(dir, "cert.pem");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      keyFile,
      "-out",
      certFile,
      "-days",
      "2",
      "-subj",
      "/CN=hamalog-test-token-issuer",
    ],
    { stdio: "ignore" },
  );
  const key = createPrivateKey(readFileSync(keyFile));
  const certDer = new X509Certificate(readFileSync(certFile)).raw;
  const service = opts.service ?? "hamalog-test-registry";
  const issuer = opts.issuer ?? "hamalog-test-issuer";
  const expiresIn = opts.expiresIn ?? 300;
  const port = await freePort();
  const requests: TokenServer["requests"] = [];

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", `http://127.0.0.1:${port}`);
    if (url.pathname !== "/token") {
      res.writeHead(404).end();
      return;
    }
    const creds = basicUser(req);
    const scope = url.searchParams.get("scope") ?? undefined;
    if (creds && opts.users[creds.user] !== creds.password) {
      requests.push({ user: creds.user, ...(scope ? { scope } : {}), status: 401 });
      res.writeHead(401, { "content-type": "application/json" });
      res.end(JSON.stringify({ errors: [{ code: "UNAUTHORIZED", message: "authentication failed" }] }));
      return;
    }
    // Only authenticated users get access; anonymous callers get a valid token that grants nothing.
    const access: { type: string; name: string; actions: string[] }[] = [];
    for (const s of url.searchParams.getAll("scope").flatMap((v) => v.split(" "))) {
      const [type, ...rest] = s.split(":");
      const actions = rest.pop()?.split(",") ?? [];
      if (creds && type === "repository") access.push({ type, name: rest.join(":"), actions });
    }
    const now = Math.floor(Date.now() / 1000);
    const header = { typ: "JWT", alg: "RS256", x5c: [certDer.toString("base64")] };
    const claims = {
      iss: issuer,
      sub: creds?.user ?? "",
      aud: service,
      exp: now + expiresIn,
      nbf: now - 10,
      iat: now,
      jti: randomUUID(),
      access,
    };
    const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
    const token = `${input}.${b64url(sign("sha256", Buffer.from(input), key))}`;
    requests.push({ ...(creds ? { user: creds.user } : {}), ...(scope ? { scope } : {}), status: 200 });
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(now * 1000).toISOString(),
      }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    port,
    registryAuth: { token: { realm: `${url}/token`, service, issuer, rootcertbundle: certFile } },
    requests,
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
