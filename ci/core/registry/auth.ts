// Registry authentication, the way docker/skopeo do it: read the `WWW-Authenticate` challenge of a 401, then
// either send Basic credentials or fetch a Bearer token from the challenge's realm (distribution's token spec),
// and cache tokens per registry + user + scope for their lifetime. Pure: the clock is an argument. Tokens and
// passwords live only in this cache and in request headers, never in a message.
import { createHash } from "node:crypto";

export interface Challenge {
  /** Lowercased scheme: `basic`, `bearer`, ... */
  scheme: string;
  /** Parameters with lowercased names (`realm`, `service`, `scope`, `error`). */
  params: Record<string, string>;
}

/**
 * Parse a `WWW-Authenticate` header (RFC 7235): one or more challenges, each a scheme followed by
 * comma-separated `name=value` / `name="quoted, value"` parameters. Unparseable input gives [].
 */
export function parseWwwAuthenticate(header: string | null | undefined): Challenge[] {
  const out: Challenge[] = [];
  if (!header) return out;
  const s = header;
  let i = 0;
  const skip = (re: RegExp) => {
    while (i < s.length && re.test(s[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < s.length && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < s.length) {
    skip(/[\s,]/);
    if (i >= s.length) break;
    const word = token();
    if (word === "") {
      i++; // stray character: skip it rather than loop forever
      continue;
    }
    skip(/[ \t]/);
    if (s[i] === "=" && current) {
      i++;
      skip(/[ \t]/);
      let value = "";
      if (s[i] === '"') {
        i++;
        while (i < s.length && s[i] !== '"') {
          if (s[i] === "\\" && i + 1 < s.length) i++;
          value += s[i];
          i++;
        }
        i++; // closing quote
      } else {
        const start = i;
        while (i < s.length && s[i] !== "," && !/\s/.test(s[i]!)) i++;
        value = s.slice(start, i);
      }
      current.params[word.toLowerCase()] = value;
    } else {
      current = { scheme: word.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

/** The pull scope for a repository, as distribution's token spec spells it. */
export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** The URL to ask a token service for a token: `realm?service=…&scope=…`. Throws on an unusable realm. */
export function tokenUrl(challenge: Challenge, scope: string | undefined): URL {
  const realm = challenge.params.realm;
  if (!realm) throw new Error("the registry's Bearer challenge names no realm (token service URL)");
  const url = new URL(realm);
  if (challenge.params.service) url.searchParams.set("service", challenge.params.service);
  if (scope) url.searchParams.set("scope", scope);
  return url;
}

interface TokenResponse {
  token: string;
  /** Seconds; the token spec says 60 when absent. */
  expiresIn: number;
  /** Milliseconds since the epoch the token was issued, when the service said so. */
  issuedAt?: number;
}

/** Read a token service's JSON answer (`token` or OAuth2 `access_token`, `expires_in`, `issued_at`). */
export function parseTokenResponse(json: unknown): TokenResponse {
  const o = (json ?? {}) as Record<string, unknown>;
  const token =
    typeof o.token === "string" && o.token !== "" ? o.token : typeof o.access_token === "string" ? o.access_token : "";
  if (token === "") throw new Error("the token service answered without a token");
  const expiresIn = typeof o.expires_in === "number" && o.expires_in > 0 ? o.expires_in : 60;
  const issued = typeof o.issued_at === "string" ? Date.parse(o.issued_at) : NaN;
  return { token, expiresIn, ...(Number.isFinite(issued) ? { issuedAt: issued } : {}) };
}

/** A registry login. The password (or token) never goes in argv, logs or errors. */
export interface Credentials {
  username: string;
  password: string;
}

/** `Basic base64(user:password)`. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, "utf8").toString("base64")}`;
}

/**
 * Who is asking, as a cache key part: the username and a hash of the password, so a changed password never
 * reuses a token fetched with the old one, and the key itself holds no secret.
 */
export function principalKey(credentials: Credentials | undefined): string {
  if (!credentials) return "anonymous";
  const h = createHash("sha256").update(`${credentials.username}\0${credentials.password}`).digest("hex").slice(0, 16);
  return `${credentials.username}#${h}`;
}

/** Tokens per registry + principal + scope, dropped a little before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Renew this long before the stated expiry, so a token does not die in flight. */
  constructor(private readonly marginMs = 5_000) {}

  private key(registry: string, principal: string, scope: string): string {
    return `${registry}\n${principal}\n${scope}`;
  }

  get(registry: string, principal: string, scope: string, now: number): string | undefined {
    const k = this.key(registry, principal, scope);
    const hit = this.tokens.get(k);
    if (!hit) return undefined;
    if (now >= hit.expiresAt) {
      this.tokens.delete(k);
      return undefined;
    }
    return hit.token;
  }

  put(registry: string, principal: string, scope: string, response: TokenResponse, now: number): void {
    const issued = response.issuedAt !== undefined && response.issuedAt <= now ? response.issuedAt : now;
    const lifetime = response.expiresIn * 1000;
    const margin = Math.min(this.marginMs, lifetime / 10);
    this.tokens.set(this.key(registry, principal, scope), {
      token: response.token,
      expiresAt: issued + lifetime - margin,
    });
  }

  delete(registry: string, principal: string, scope: string): void {
    this.tokens.delete(this.key(registry, principal, scope));
  }

  get size(): number {
    return this.tokens.size;
  }
}
