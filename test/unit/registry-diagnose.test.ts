// Diagnoses as a person reads them: near-miss detection over tag conventions, tag ranking, and each kind's
// message naming what was asked, why it failed and the next step.
import { describe, expect, it } from "vitest";
import { httpDiagnosis, nameUnknownDiagnosis, networkDiagnosis } from "../../ci/core/registry/diagnose-access.js";
import { manifestUnknownDiagnosis } from "../../ci/core/registry/diagnose-image.js";
import type { HttpFacts, Subject } from "../../ci/core/registry/diagnosis.js";
import { findNearMisses, rankTags } from "../../ci/core/registry/near-miss.js";

const SHA = "453a6545b97fe240727c378291230abeb793d851";
const GHCR: Subject = { registry: "ghcr.io", repository: "daemin-kim/hamalog-backend", reference: SHA, wantedSha: SHA };

describe("findNearMisses", () => {
  it.each([
    [`main-${SHA}`, /full sha.*branch-prefixed.*docker\/metadata-action/],
    [`develop-${SHA.slice(0, 7)}`, /prefix 453a654.*`develop-<sha>` is a branch-prefixed/],
    ["sha-453a654", /prefix 453a654.*type=sha/],
    ["453a654", /prefix 453a654.*short sha/],
    [SHA.toUpperCase(), /upper case/],
  ])("%s is the wanted commit under another convention", (tag, why) => {
    const near = findNearMisses(SHA, ["latest", "v1", tag, "0123456789abcdef0123456789abcdef01234567"], SHA);
    expect(near).toEqual([{ tag, why: expect.stringMatching(why) }]);
  });

  it("does not flag other commits' tags", () => {
    expect(
      findNearMisses(SHA, ["main-0123456789abcdef0123456789abcdef01234567", "sha-0123456", "latest"], SHA),
    ).toEqual([]);
  });

  it("puts full-sha matches before prefix matches", () => {
    const near = findNearMisses(SHA, ["sha-453a654", `main-${SHA}`], SHA);
    expect(near.map((n) => n.tag)).toEqual([`main-${SHA}`, "sha-453a654"]);
  });

  it("asked for a short or prefixed form, finds the full-sha tag", () => {
    expect(findNearMisses("sha-453a654", [SHA, "latest"])[0]).toEqual({
      tag: SHA,
      why: expect.stringMatching(/full-sha tag this pipeline pushes/),
    });
    expect(findNearMisses(`main-${SHA}`, [SHA])[0]?.tag).toBe(SHA);
  });

  it("a non-sha reference gets typo candidates only", () => {
    expect(findNearMisses("lastest", ["latest", "stable", "v1.2.3"])).toEqual([
      { tag: "latest", why: "differs from `lastest` by 1 character (a typo?)" },
    ]);
    expect(findNearMisses("prod", ["latest", "stable"])).toEqual([]);
  });

  it("is bounded", () => {
    const tags = Array.from({ length: 20 }, (_, i) => `b${i}-${SHA}`);
    expect(findNearMisses(SHA, tags, SHA)).toHaveLength(5);
  });
});

describe("rankTags", () => {
  it("near-misses first, then most similar, registry order breaking ties", () => {
    expect(rankTags("v1.2.3", ["latest", "v1.2.4", "v2.0.0", "v1.2.5"], [{ tag: "v2.0.0", why: "" }])).toEqual([
      "v2.0.0",
      "v1.2.4",
      "v1.2.5",
      "latest",
    ]);
  });
});

describe("manifestUnknownDiagnosis", () => {
  it("the seed's case: says what was not found, what was found instead, why, and the fix", () => {
    const d = manifestUnknownDiagnosis(GHCR, ["latest", `main-${SHA}`, "main-0123456"], { status: 404 });
    expect(d.kind).toBe("manifest-unknown");
    expect(d.nearMisses?.map((n) => n.tag)).toEqual([`main-${SHA}`]);
    expect(d.tags?.[0]).toBe(`main-${SHA}`);
    expect(d.message.split("\n")).toEqual([
      `tag ${SHA} not found in ghcr.io/daemin-kim/hamalog-backend (MANIFEST_UNKNOWN) — the error \`docker pull\` reports as \`manifest unknown\`.`,
      "Found instead:",
      expect.stringMatching(new RegExp(`^  main-${SHA} — the same commit \\(full sha\\): .*branch-prefixed`)),
      expect.stringMatching(
        /^Tags in ghcr.io\/daemin-kim\/hamalog-backend \(3, most similar first\): main-453a6545b97fe240727c378291230abeb793d851, /,
      ),
      expect.stringMatching(/^Next: the pushing side used another tag convention; push with this module's `tag`/),
    ]);
  });

  it("an empty repository and an unlistable one say so", () => {
    expect(manifestUnknownDiagnosis(GHCR, []).message).toMatch(/no tags at all/);
    const d = manifestUnknownDiagnosis(GHCR, undefined, { tagsProblem: "tags on ghcr.io: HTTP 403" });
    expect(d.message).toMatch(/Could not list the repository's tags: tags on ghcr.io: HTTP 403/);
    expect(d.tags).toBeUndefined();
    expect(d.message).toMatch(/Next: check that the build for this commit pushed/);
  });

  it("bounds the tags it shows", () => {
    const tags = Array.from({ length: 40 }, (_, i) => `v${i}`);
    const d = manifestUnknownDiagnosis({ ...GHCR, reference: "nope", wantedSha: undefined } as Subject, tags);
    expect(d.message).toMatch(/\(40, most similar first\): (?:[^,]+, ){9}[^,]+, … \(30 more\)/);
  });
});

describe("other kinds", () => {
  const facts = (f: Partial<HttpFacts>): HttpFacts => ({
    what: "manifest",
    host: "ghcr.io",
    status: 401,
    errors: [],
    presented: "none",
    ...f,
  });

  it("401 anonymous vs 401 with credentials vs token service refusal vs 403", () => {
    const anon = httpDiagnosis(GHCR, facts({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }));
    expect(anon.kind).toBe("anonymous-unauthorized");
    expect(anon.message).toMatch(/requires credentials.*private, or the repository does not exist.*read:packages/s);
    // The advice names flags that exist on both doors.
    expect(anon.message).toContain("--password-env VAR");
    expect(anon.message).toContain("--registry-username U --registry-token=env://VAR");

    const withToken = httpDiagnosis(
      { ...GHCR, username: "ci" },
      facts({ presented: "token", challengeError: "insufficient_scope" }),
    );
    expect(withToken.kind).toBe("unauthorized");
    expect(withToken.message).toMatch(/refused the token issued to user `ci`.*insufficient_scope.*read:packages/s);

    const tokenService = httpDiagnosis(
      { ...GHCR, username: "ci" },
      facts({ what: "token", host: "ghcr.io", status: 403 }),
    );
    expect(tokenService.kind).toBe("unauthorized");
    expect(tokenService.message).toMatch(/token service ghcr.io rejected the credentials of user `ci` \(HTTP 403/);

    const denied = httpDiagnosis(
      { ...GHCR, username: "ci" },
      facts({ status: 403, presented: "token", errors: [{ code: "DENIED", message: "permission_denied" }] }),
    );
    expect(denied.kind).toBe("denied");
    expect(denied.message).toMatch(/denied user `ci` access .*HTTP 403 DENIED: permission_denied.*Manage access/s);
  });

  it("429 and 5xx", () => {
    const rl = httpDiagnosis(
      GHCR,
      facts({ status: 429, retryAfterMs: 30_000, errors: [{ code: "TOOMANYREQUESTS", message: "" }] }),
    );
    expect(rl.kind).toBe("rate-limited");
    expect(rl.message).toMatch(/HTTP 429 TOOMANYREQUESTS.*wait 30 s.*pass --username/s);
    const server = httpDiagnosis(GHCR, facts({ status: 502 }));
    expect(server.kind).toBe("server");
    expect(server.message).toMatch(/HTTP 502.*kept failing after retries.*githubstatus/s);
  });

  it("name-unknown hints at the seed's ghcr.io/hamalog", () => {
    const d = nameUnknownDiagnosis({ registry: "ghcr.io", repository: "hamalog", reference: SHA });
    expect(d.message).toMatch(/`ghcr.io\/hamalog` does not exist or is not visible to anonymous access/);
    expect(d.message).toMatch(/OWNER\/IMAGE.*ghcr.io\/daemin-kim\/hamalog-backend.*GITHUB_REPOSITORY/s);
  });

  it("network names the host and the next step per reason", () => {
    expect(networkDiagnosis(GHCR, "ghcr.io", "dns", "DNS lookup of ghcr.io failed (ENOTFOUND)").message).toMatch(
      /ghcr.io could not be reached — DNS lookup of ghcr.io failed \(ENOTFOUND\)\.\nNext: check the host name/,
    );
    expect(networkDiagnosis(GHCR, "ghcr.io", "tls", "x").message).toMatch(/NODE_EXTRA_CA_CERTS/);
  });
});
