// A repository's tags, for telling a person what was pushed instead: `tags/list?n=…` with `Link` pagination,
// bounded in pages, tags and bytes, keeping only strings a tag can be (they end up in messages).
import type { ImageName } from "../reference.js";
import { OCI_TAG } from "../tags.js";
import { pullScope, type Credentials } from "./auth.js";
import type { AuthorizedRequester } from "./authorized-request.js";
import { nextLink, readBody, readErrorBody, type Call } from "./http.js";
import { httpError } from "./http-error.js";

/** One page of tags/list: 4 MiB is ~100k tags, more than any page a registry sends. */
const MAX_TAGS_PAGE_BYTES = 4 * 1024 * 1024;
/** A registry that keeps answering `rel="next"` with empty pages is cut off after this many. */
const MAX_TAG_PAGES = 50;

export interface TagListOptions {
  pageSize?: number;
  maxTags?: number;
}

export interface TagList {
  tags: string[];
  truncated: boolean;
  pages: number;
}

/**
 * `GET /v2/<name>/tags/list?n=…`, following `Link: <…>; rel="next"` until done or `maxTags` collected.
 * Registries that ignore `n` (distribution 2.8 does) simply answer everything on the first page.
 */
export async function listTags(
  requester: AuthorizedRequester,
  now: () => number,
  target: ImageName,
  credentials: Credentials | undefined,
  call: Call,
  opts: TagListOptions = {},
): Promise<TagList> {
  const pageSize = opts.pageSize ?? 100;
  const maxTags = opts.maxTags ?? 1000;
  const tags: string[] = [];
  let path = `/v2/${target.repository}/tags/list?n=${pageSize}`;
  let pages = 0;
  for (;;) {
    const { res, presented, host, url } = await requester.request(
      "GET",
      target.registry,
      path,
      pullScope(target.repository),
      credentials,
      call,
      {},
    );
    if (!res.ok) throw httpError("tags", host, res, await readErrorBody(res, host), presented, now());
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
