// Text a registry chose (error codes and messages, media types, tag names, platform words) on its way to a
// terminal or a CI log: control characters (ANSI escapes, carriage returns, forged newlines), bidi overrides
// and line separators are replaced, whitespace runs collapse, and the length is capped. A registry is a party
// we verify, not one whose words we print raw.

// C0 and C1 controls, DEL, bidi embeddings/overrides/isolates, zero-width and line/paragraph separators.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]/g;

/** `value` as one printable line of at most `max` characters (a cut one ends with `…`). */
export function registryText(value: unknown, max: number): string {
  const s = String(value ?? "");
  // Cut early so a megabyte of text is not scanned for a 64-character result.
  const head = s.length > max * 4 ? s.slice(0, max * 4) : s;
  const clean = head.replace(UNPRINTABLE, " ").replace(/\s+/g, " ").trim();
  return clean.length > max || s.length > head.length ? `${clean.slice(0, max - 1)}…` : clean;
}
