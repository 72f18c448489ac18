// The one quoting function: every word reaches the remote program unchanged, whatever it contains. Checked
// against a real POSIX shell (sh -c), which is what sshd hands the command line to.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { quoteWord, shellCommand } from "../../ci/core/deploy/shell.js";

const HOSTILE: [string, string][] = [
  ["single quote", "it's"],
  ["only quotes", "'''"],
  ["double quote", 'say "hi"'],
  ["dollar", "$HOME"],
  ["command substitution", "$(touch /tmp/hamalog-shell-test-marker)"],
  ["backticks", "`touch /tmp/hamalog-shell-test-marker`"],
  ["semicolon", "a; touch /tmp/hamalog-shell-test-marker"],
  ["pipe", "a | touch /tmp/hamalog-shell-test-marker"],
  ["ampersand", "a & touch /tmp/hamalog-shell-test-marker &"],
  ["newline", "a\ntouch /tmp/hamalog-shell-test-marker"],
  ["glob", "*"],
  ["empty", ""],
  ["backslash", "a\\'b\\"],
  ["dash option", "-rf"],
];

describe("quoteWord", () => {
  it.each([
    ["plain", "'plain'"],
    ["it's", "'it'\\''s'"],
    ["", "''"],
    ["a b", "'a b'"],
  ])("%j → %s", (word, quoted) => {
    expect(quoteWord(word)).toBe(quoted);
  });

  it("refuses NUL bytes (no shell can carry them)", () => {
    expect(() => quoteWord("a\0b")).toThrow(/NUL/);
  });
});

describe("shellCommand through a real sh", () => {
  it.each(HOSTILE)("%s reaches the program as one unchanged word", (_name, word) => {
    const line = shellCommand(["printf", "%s\\0", word, "end"]);
    const out = execFileSync("sh", ["-c", line], { encoding: "utf8" });
    expect(out.split("\0")).toEqual([word, "end", ""]);
  });

  it("ran nothing the words spelled", () => {
    for (const [, w] of HOSTILE) execFileSync("sh", ["-c", shellCommand(["true", w])]);
    expect(() => execFileSync("test", ["-e", "/tmp/hamalog-shell-test-marker"])).toThrow();
  });

  it("refuses an empty argv", () => {
    expect(() => shellCommand([])).toThrow(/empty/);
  });
});
