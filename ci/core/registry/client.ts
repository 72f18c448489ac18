// An OCI distribution client with no engine and no dependencies, for verifying an image: manifests (with the
// four manifest media types), config blobs and tag lists, over authorized-request.ts. Reuse one RegistryClient
// across calls: with a warm token a verification is a single request.
import type { ImageName } from "../reference.js";
import { pullScope, type Credentials } from "./auth.js";
import { AuthorizedRequester } from "./authorized-request.js";
import { MAX_MANIFEST_BYTES, readBody, readErrorBody, type Call, type HttpFetch, type Transport } from "./http.js";
import { httpError } from "./http-error.js";
import { MANIFEST_ACCEPT } from "./manifest.js";
import { nodeHttpFetch } from "./node-http.js";
import { listTags, type TagList, type TagListOptions } from "./tag-list.js";

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

/** An image config is JSON of a few KiB; 8 MiB leaves room for long histories and stops an endless one. */
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

export class RegistryClient {
  private readonly t: Transport;
  private readonly requester: AuthorizedRequester;

  constructor(opts: RegistryClientOptions = {}) {
    this.t = {
      fetch: opts.fetch ?? nodeHttpFetch,
      now: opts.now ?? Date.now,
      sleep: opts.sleep ?? ((ms) => new Promise((r) => setTimeout(r, ms))),
      retries: opts.retries ?? 3,
      backoffMs: opts.backoffMs ?? 250,
      maxWaitMs: opts.maxWaitMs ?? 10_000,
    };
    this.requester = new AuthorizedRequester(this.t);
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
    const { res, presented, host } = await this.requester.request(
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
    if (!res.ok) throw httpError("manifest", host, res, await readErrorBody(res, host), presented, this.t.now());
    const body = await readBody(res, host, MAX_MANIFEST_BYTES, "manifest");
    return {
      body,
      contentType: res.headers.get("content-type"),
      digestHeader: res.headers.get("docker-content-digest"),
    };
  }

  /** `GET /v2/<name>/blobs/<digest>`, following a redirect to storage without the registry's Authorization. */
  async getBlob(target: ImageName, digest: string, credentials?: Credentials, call = this.newCall()): Promise<Buffer> {
    const { res, presented, host } = await this.requester.request(
      "GET",
      target.registry,
      `/v2/${target.repository}/blobs/${digest}`,
      pullScope(target.repository),
      credentials,
      call,
      {},
    );
    if (!res.ok) throw httpError("blob", host, res, await readErrorBody(res, host), presented, this.t.now());
    return readBody(res, host, MAX_CONFIG_BYTES, "config blob");
  }

  /**
   * `GET /v2/<name>/tags/list?n=…`, following `Link: <…>; rel="next"` until done or `maxTags` collected.
   * Registries that ignore `n` (distribution 2.8 does) simply answer everything on the first page.
   */
  listTags(
    target: ImageName,
    credentials?: Credentials,
    call = this.newCall(),
    opts: TagListOptions = {},
  ): Promise<TagList> {
    return listTags(this.requester, this.t.now, target, credentials, call, opts);
  }
}
