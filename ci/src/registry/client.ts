// An OCI distribution client with no engine and no dependencies: GET /v2/, manifests (HEAD/GET with the four
// manifest media types), blobs, tags/list with `n` + `Link` pagination; auth as docker does it (challenge →
// Basic or Bearer token, tokens cached per scope); HTTPS except loopback registries (plain HTTP, like Docker).
// Reuse one RegistryClient across calls: with a warm token a verification is a single request.
import { isLoopbackRegistry, type ImageName } from "../reference.js";
import { OCI_TAG } from "../tags.js";
import {
  TokenCache,
  basicAuthorization,
  parseTokenResponse,
  parseWwwAuthenticate,
  principalKey,
  pullScope,
  tokenUrl,
  type Challenge,
  type Credentials,
} from "./auth.js";
import {
  MAX_MANIFEST_BYTES,
  NetworkFailure,
  nextLink,
  readBody,
  readErrorBody,
  retryAfterMs,
  send,
  type Call,
  type HttpFetch,
  type HttpResponse,
  type Transport,
} from "./http.js";
import { MANIFEST_ACCEPT } from "./manifest.js";
import { nodeHttpFetch } from "./node-http.js";
import { registryText } from "./text.js";

/** What the failing request presented: nothing, an anonymous token, Basic credentials, or a token got with them. */
type Presented = "none" | "anonymous-token" | "basic" | "token";

interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** An HTTP answer that is not success. Holds status, the registry's error codes and no secret. */
export class RegistryHttpError extends Error {
  constructor(
    /** What was asked for. `token` means the token service refused. */
    readonly what: "manifest" | "blob" | "tags" | "token",
    readonly host: string,
    readonly status: number,
    readonly errors: RegistryErrorEntry[],
    readonly presented: Presented,
    readonly retryAfterMs?: number,
    /** The `error=` of a Bearer challenge, e.g. `insufficient_scope`. */
    readonly challengeError?: string,
  ) {
    super(`${what} on ${host}: HTTP ${status}${errors.length ? ` ${errors.map((e) => e.code).join(", ")}` : ""}`);
    this.name = "RegistryHttpError";
  }

  get codes(): string[] {
    return this.errors.map((e) => e.code);
  }
}

interface RegistryClientOptions {
  /** Default: node-http.ts (not the global fetch, whose loading dominates a CLI run). */
  fetch?: HttpFetch;
  /** Clock and sleep are injectable so tests of timing need not wait. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Retries of 5xx/429 after the first attempt (default 3). */
  retries?: number;
  /** First backoff in ms (default 250; doubles per retry). */
  backoffMs?: number;
  /** Longest single wait incl. Retry-After (default 10 s). */
  maxWaitMs?: number;
}

interface ManifestAnswer {
  body: Buffer;
  contentType: string | null;
  /** `Docker-Content-Digest`, when the registry sent it. */
  digestHeader: string | null;
}

/** The base URL of a registry: plain HTTP on loopback (127.0.0.0/8, localhost, ::1), HTTPS everywhere else. */
export function registryBaseUrl(registry: string): URL {
  const host = registry === "docker.io" ? "registry-1.docker.io" : registry;
  return new URL(`${isLoopbackRegistry(registry) ? "http" : "https"}://${host}`);
}

/** At most this many of a registry's error entries are kept; codes and messages are printable and capped. */
const MAX_ERRORS = 5;
const MAX_CODE_CHARS = 64;
const MAX_MESSAGE_CHARS = 300;

/** Parse a registry error body `{"errors":[{code,message,detail}]}`; anything else gives []. */
export function parseErrors(body: Buffer): RegistryErrorEntry[] {
  try {
    const j = JSON.parse(body.toString("utf8")) as { errors?: unknown };
    if (!Array.isArray(j.errors)) return [];
    return j.errors
      .filter((e): e is Record<string, unknown> => typeof e === "object" && e !== null)
      .slice(0, MAX_ERRORS)
      .map((e) => ({
        code: registryText(e.code ?? "UNKNOWN", MAX_CODE_CHARS) || "UNKNOWN",
        message: registryText(e.message ?? "", MAX_MESSAGE_CHARS),
        ...(e.detail !== undefined ? { detail: e.detail } : {}),
      }));
  } catch {
    return [];
  }
}

const MAX_REDIRECTS = 5;
/** An image config is JSON of a few KiB; 8 MiB leaves room for long histories and stops an endless one. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;
/** One page of tags/list: 4 MiB is ~100k tags, more than any page a registry sends. */
const MAX_TAGS_PAGE_BYTES = 4 * 1024 * 1024;
/** A registry that keeps answering `rel="next"` with empty pages is cut off after this many. */
const MAX_TAG_PAGES = 50;
const MAX_TOKEN_BYTES = 1024 * 1024;

export class RegistryClient {
  private tokens = new TokenCache();
  /** Registry + principal → the scheme it challenged with, so warm requests authenticate up front. */
  private readonly schemes = new Map<string, Challenge>();
  private readonly t: Transport;

  constructor(opts: RegistryClientOptions = {}) {
    this.t = {
      fetch: opts.fetch ?? nodeHttpFetch,
      now: opts.now ?? Date.now,
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      retries: opts.retries ?? 3,
      backoffMs: opts.backoffMs ?? 250,
      maxWaitMs: opts.maxWaitMs ?? 10_000,
    };
  }

  /** A fresh budget for one operation. */
  newCall(timeoutMs = 30_000): Call {
    return { deadline: this.t.now() + timeoutMs, requests: 0 };
  }

  /** `GET /v2/<name>/manifests/<reference>` accepting OCI index/manifest and Docker list/manifest v2. */
  async getManifest(
    target: ImageName,
    reference: string,
    credentials?: Credentials,
    call = this.newCall(),
  ): Promise<ManifestAnswer> {
    const path = `/v2/${target.repository}/manifests/${encodeURIComponent(reference).replace(/%3A/g, ":")}`;
    const { res, presented, host } = await this.request(
      "GET",
      target.registry,
      path,
      pullScope(target.repository),
      credentials,
      call,
      {
        accept: MANIFEST_ACCEPT,
      },
    );
    if (!res.ok) throw this.httpError("manifest", host, res, await readErrorBody(res, host), presented);
    const body = await readBody(res, host, MAX_MANIFEST_BYTES, "manifest");
    return {
      body,
      contentType: res.headers.get("content-type"),
      digestHeader: res.headers.get("docker-content-digest"),
    };
  }

  /** `GET /v2/<name>/blobs/<digest>`, following a redirect to storage without the registry's Authorization. */
  async getBlob(target: ImageName, digest: string, credentials?: Credentials, call = this.newCall()): Promise<Buffer> {
    const { res, presented, host } = await this.request(
      "GET",
      target.registry,
      `/v2/${target.repository}/blobs/${digest}`,
      pullScope(target.repository),
      credentials,
      call,
      {},
    );
    if (!res.ok) throw this.httpError("blob", host, res, await readErrorBody(res, host), presented);
    return readBody(res, host, MAX_CONFIG_BYTES, "config blob");
  }

  /**
   * `GET /v2/<name>/tags/list?n=…`, following `Link: <…>; rel="next"` until done or `maxTags` collected.
   * Registries that ignore `n` (distribution 2.8 does) simply answer everything on the first page.
   */
  async listTags(
    target: ImageName,
    credentials?: Credentials,
    call = this.newCall(),
    opts: { pageSize?: number; maxTags?: number } = {},
  ): Promise<{ tags: string[]; truncated: boolean; pages: number }> {
    const pageSize = opts.pageSize ?? 100;
    const maxTags = opts.maxTags ?? 1000;
    const tags: string[] = [];
    let path = `/v2/${target.repository}/tags/list?n=${pageSize}`;
    let pages = 0;
    for (;;) {
      const { res, presented, host, url } = await this.request(
        "GET",
        target.registry,
        path,
        pullScope(target.repository),
        credentials,
        call,
        {},
      );
      if (!res.ok) throw this.httpError("tags", host, res, await readErrorBody(res, host), presented);
      const body = await readBody(res, host, MAX_TAGS_PAGE_BYTES, "tag list");
      pages++;
      let page: unknown = [];
      try {
        page = (JSON.parse(body.toString("utf8")) as { tags?: unknown }).tags ?? [];
      } catch {
        page = [];
      }
      // Tags end up in messages: only names a tag can have are kept (no escapes, no forged lines).
      if (Array.isArray(page)) for (const t of page) if (typeof t === "string" && OCI_TAG.test(t)) tags.push(t);
      if (tags.length >= maxTags || pages >= MAX_TAG_PAGES)
        return { tags: tags.slice(0, maxTags), truncated: true, pages };
      const next = nextLink(res.headers.get("link"), url);
      if (!next || next.host !== url.host) return { tags, truncated: false, pages };
      path = `${next.pathname}${next.search}`;
    }
  }

  private httpError(
    what: RegistryHttpError["what"],
    host: string,
    res: HttpResponse,
    body: Buffer,
    presented: Presented,
  ): RegistryHttpError {
    const challenge = parseWwwAuthenticate(res.headers.get("www-authenticate")).find((c) => c.scheme === "bearer");
    return new RegistryHttpError(
      what,
      host,
      res.status,
      parseErrors(body),
      presented,
      retryAfterMs(res.headers.get("retry-after"), this.t.now()),
      challenge?.params.error,
    );
  }

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
  private async request(
    method: "GET" | "HEAD",
    registry: string,
    path: string,
    scope: string | undefined,
    credentials: Credentials | undefined,
    call: Call,
    headers: Record<string, string>,
  ): Promise<{ res: HttpResponse; presented: Presented; host: string; url: URL }> {
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
