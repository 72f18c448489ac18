// Registry requests with auth as docker does it: the 401 challenge answered with Basic or a Bearer token from
// the realm (tokens cached per scope, the scheme remembered so warm requests authenticate up front), redirects
// followed by hand so Authorization never leaves the registry's origin. HTTPS except loopback registries.
import { isLoopbackRegistry } from "../reference.js";
import {
  TokenCache,
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  principalKey,
  tokenUrl,
  type Challenge,
  type Credentials,
} from "./auth.js";
import {
  NetworkFailure,
  readBody,
  readErrorBody,
  retryAfterMs,
  send,
  type Call,
  type HttpResponse,
  type Transport,
} from "./http.js";
import { RegistryHttpError, parseErrors, type Presented } from "./http-error.js";

/** The base URL of a registry: plain HTTP on loopback (127.0.0.0/8, localhost, ::1), HTTPS everywhere else. */
export function registryBaseUrl(registry: string): URL {
  const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
  return new URL(`${isLoopbackRegistry(registry) ? "http" : "https"}://${host}`);
}

const MAX_REDIRECTS = 5;
const MAX_TOKEN_BYTES = 1024 * 1024;

export interface Answer {
  res: HttpResponse;
  presented: Presented;
  /** The registry's host, for messages. */
  host: string;
  /** Where the answer came from after redirects (a `Link: rel="next"` is relative to it). */
  url: URL;
}

export class AuthorizedRequester {
  private tokens = new TokenCache();
  /** Registry + principal → the scheme it challenged with, so warm requests authenticate up front. */
  private readonly schemes = new Map<string, Challenge>();

  constructor(private readonly t: Transport) {}

  private schemeKey(registry: string, credentials: Credentials | undefined): string {
    return `${registry}\n${principalKey(credentials)}`;
  }

  /**
   * The Authorization to send up front, from what this client already knows about the registry: Basic, a
   * cached token, or — when the registry is known to want tokens but none is cached for this scope — a token
   * fetched now, which saves the 401 round trip.
   */
  private async knownAuthorization(
    registry: string,
    scope: string | undefined,
    credentials: Credentials | undefined,
    call: Call,
  ): Promise<{ header?: string; presented: Presented }> {
    const known = this.schemes.get(this.schemeKey(registry, credentials));
    if (known?.scheme === "basic" && credentials)
      return { header: basicAuthorization(credentials.username, credentials.password), presented: "basic" };
    if (known?.scheme === "bearer") {
      const presented: Presented = credentials ? "token" : "anonymous-token";
      const token =
        this.tokens.get(registry, principalKey(credentials), scope ?? "", this.t.now()) ??
        (await this.fetchToken(registry, known, scope, credentials, call));
      return { header: `Bearer ${token}`, presented };
    }
    return { presented: "none" };
  }

  /**
   * Send a request, answering one 401 challenge: Basic with credentials, or a Bearer token fetched from the
   * realm (with credentials when given, anonymously otherwise). A token this client had cached that is now
   * refused is dropped and fetched once more. Redirects are followed by hand: Authorization never leaves the
   * registry's origin.
   */
  async request(
    method: "GET" | "HEAD",
    registry: string,
    path: string,
    scope: string | undefined,
    credentials: Credentials | undefined,
    call: Call,
    headers: Record<string, string>,
  ): Promise<Answer> {
    const base = registryBaseUrl(registry);
    let { header, presented } = await this.knownAuthorization(registry, scope, credentials, call);
    for (let authRound = 0; ; authRound++) {
      const { res, url } = await this.sendFollowing(method, new URL(path, base), headers, header, call);
      if (res.status !== 401 || authRound >= 2) return { res, presented, host: base.host, url };
      const challenges = parseWwwAuthenticate(res.headers.get("www-authenticate"));
      const bearer = challenges.find((c) => c.scheme === "bearer");
      const basic = challenges.find((c) => c.scheme === "basic");
      const key = this.schemeKey(registry, credentials);
      if (bearer) {
        // A token we sent was refused: if it came from the cache, fetch a fresh one once; else it is final.
        if (presented === "token" || presented === "anonymous-token") {
          if (authRound > 0) return { res, presented, host: base.host, url };
          this.tokens.delete(registry, principalKey(credentials), scope ?? "");
        }
        await res.body?.cancel().catch(() => undefined);
        this.schemes.set(key, bearer);
        const token = await this.fetchToken(registry, bearer, scope, credentials, call);
        header = `Bearer ${token}`;
        presented = credentials ? "token" : "anonymous-token";
        continue;
      }
      if (basic && credentials && presented === "none") {
        await res.body?.cancel().catch(() => undefined);
        this.schemes.set(key, basic);
        header = basicAuthorization(credentials.username, credentials.password);
        presented = "basic";
        continue;
      }
      return { res, presented, host: base.host, url };
    }
  }

  private async sendFollowing(
    method: "GET" | "HEAD",
    start: URL,
    headers: Record<string, string>,
    authorization: string | undefined,
    call: Call,
  ): Promise<{ res: HttpResponse; url: URL }> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const sameOrigin = url.origin === start.origin;
      const h: Record<string, string> = { ...headers, "user-agent": "hamalog-verify" };
      if (authorization && sameOrigin) h.authorization = authorization;
      const res = await send(url, { method, headers: h, redirect: "manual" }, call, this.t);
      const location = res.headers.get("location");
      if (res.status >= 300 && res.status < 400 && location && hop < MAX_REDIRECTS) {
        await res.body?.cancel().catch(() => undefined);
        url = new URL(location, url);
        continue;
      }
      return { res, url };
    }
  }

  private async fetchToken(
    registry: string,
    challenge: Challenge,
    scope: string | undefined,
    credentials: Credentials | undefined,
    call: Call,
  ): Promise<string> {
    let url: URL;
    try {
      url = tokenUrl(challenge, scope);
    } catch (e) {
      throw new RegistryHttpError(
        "token",
        registry,
        0,
        [{ code: "BAD_CHALLENGE", message: (e as Error).message }],
        credentials ? "token" : "anonymous-token",
      );
    }
    const presented: Presented = credentials ? "token" : "anonymous-token";
    if (credentials && url.protocol !== "https:" && !isLoopbackRegistry(url.host)) {
      throw new RegistryHttpError(
        "token",
        url.host,
        0,
        [
          {
            code: "INSECURE_REALM",
            message: `refusing to send credentials to the token service ${url.origin} over plain HTTP`,
          },
        ],
        presented,
      );
    }
    const headers: Record<string, string> = { "user-agent": "hamalog-verify", accept: "application/json" };
    if (credentials) headers.authorization = basicAuthorization(credentials.username, credentials.password);
    let res: HttpResponse;
    try {
      res = await send(url, { method: "GET", headers, redirect: "follow" }, call, this.t);
    } catch (e) {
      if (e instanceof NetworkFailure) throw new NetworkFailure(e.host, e.reason, `token service: ${e.detail}`);
      throw e;
    }
    const body = res.ok
      ? await readBody(res, url.host, MAX_TOKEN_BYTES, "token response")
      : await readErrorBody(res, url.host);
    if (!res.ok) {
      // Token services answer with registry-style errors or OAuth-style {"details": …}; keep only codes/short text.
      throw new RegistryHttpError(
        "token",
        url.host,
        res.status,
        parseErrors(body),
        presented,
        retryAfterMs(res.headers.get("retry-after"), this.t.now()),
      );
    }
    let parsed;
    try {
      parsed = parseTokenResponse(JSON.parse(body.toString("utf8")));
    } catch {
      // Never echo the body or the parser's message: it may quote the token.
      throw new RegistryHttpError(
        "token",
        url.host,
        res.status,
        [{ code: "BAD_TOKEN_RESPONSE", message: "the token service's answer is not a JSON token response" }],
        presented,
      );
    }
    this.tokens.put(registry, principalKey(credentials), scope ?? "", parsed, this.t.now());
    return parsed.token;
  }
}
