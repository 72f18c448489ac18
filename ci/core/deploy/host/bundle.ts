// The files one host step installs, sent as ONE ustar archive on the step's stdin: the agent unpacks it into a
// staging directory and renames each file into place (journal.json last), so a phase that writes a release file,
// an env file, the journal and its recovery costs one remote command, and a client killed mid-send leaves a torn
// archive that `tar` refuses (nothing is installed). Pure: entries in, bytes out.

export interface BundleEntry {
  /** Path inside the archive: `files/<relative to the deploy directory>`, `stage/<name>`, or `history.add`. */
  path: string;
  content: string;
  /** Octal permission bits (0600 unless said otherwise; the agent makes proxy/ files world-readable). */
  mode?: number;
}

const BLOCK = 512;

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, "0")}\0`;
}

function header(path: string, size: number, mode: number): Buffer {
  if (Buffer.byteLength(path) > 100) throw new Error(`internal: bundle path too long: ${path}`);
  const h = Buffer.alloc(BLOCK, 0);
  h.write(path, 0, "utf8");
  h.write(octal(mode, 8), 100, "ascii");
  h.write(octal(0, 8), 108, "ascii"); // uid
  h.write(octal(0, 8), 116, "ascii"); // gid
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(0, 12), 136, "ascii"); // mtime: the agent's rename gives the real one
  h.write("        ", 148, "ascii"); // checksum placeholder (spaces while summing)
  h.write("0", 156, "ascii"); // regular file
  h.write("ustar\0", 257, "ascii");
  h.write("00", 263, "ascii");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, "ascii");
  return h;
}

/** The archive for `entries` (an empty one is two zero blocks, which `tar -x` accepts). */
export function bundle(entries: readonly BundleEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.content, "utf8");
    parts.push(header(e.path, body.length, e.mode ?? 0o600), body);
    const pad = (BLOCK - (body.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad, 0));
  }
  parts.push(Buffer.alloc(BLOCK * 2, 0));
  return Buffer.concat(parts);
}
