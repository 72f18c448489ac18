// Reconciliation, the pure half: from what the host shows (the journal, the compose project's containers, a
// login left in the deploy's Docker config) to the ordered list of recovery actions a run performs under the lock
// before anything else — and the same comparison, read-only, for `status`. Deterministic: the journal says what
// is live; nothing is guessed from files on disk. recover.ts performs the actions.
import { parseHistory } from "./history.js";
import { OBSERVE } from "./journal-commands.js";
import {
  journalFromHistory,
  parseJournal,
  type Colour,
  type Journal,
  type JournalAttempt,
  type Slot,
} from "./journal.js";

/** One container of the compose project, as `docker ps --all` lists it (cmd.observe). */
export interface ContainerSeen {
  id: string;
  name: string;
  /** The image reference the container was created from (the compose file's `image:`). */
  image: string;
  /** created, running, exited, … */
  state: string;
  /** Its compose service label. */
  service: string;
  /** Docker's status text, e.g. `Up 3 seconds (healthy)`. */
  status?: string;
}

export interface Observation {
  journal: Journal;
  containers: ContainerSeen[];
  /** The deploy's Docker config still holds a registry credential (a login that was never logged out). */
  loginLeft: boolean;
}

export type RecoveryAction =
  /** Containers compose left under a temporary name (`<12 hex>_<name>`) when it was stopped mid-replacement. */
  | { kind: "remove-containers"; containers: ContainerSeen[] }
  | { kind: "logout" }
  /** Bring `live`'s compose file up and pass the health gate. */
  | { kind: "restore-live"; slot: Slot }
  /** Nothing was live (a first deploy died): stop what the dead attempt started. */
  | { kind: "stop-candidate"; slot: Slot }
  /** Blue/green: make the proxy route to the live colour (re-render + reload). */
  | { kind: "route-proxy"; colour: Colour }
  /** Blue/green: remove the dead attempt's candidate colour (it is not live). */
  | { kind: "remove-colour"; colour: Colour }
  /** Write the journal with no attempt (and, blue/green, no `previous` when the candidate replaced it). */
  | { kind: "clear-attempt"; journal: Journal };

export interface RecoveryPlan {
  /** The attempt that died, if any. */
  dead: JournalAttempt | null;
  actions: RecoveryAction[];
}

/** cmd.observe's output, read: the journal (adopted from history on a host deployed before it: `adopted`). */
export function parseObservation(stdout: string, where: string, now: string): Observation & { adopted: boolean } {
  const section = (mark: string, next: string) => {
    const a = stdout.indexOf(`${mark}\n`);
    if (a < 0) return undefined;
    const from = a + mark.length + 1;
    const b = stdout.indexOf(`\n${next}\n`, from - 1);
    return stdout.slice(from, b < 0 ? undefined : b + 1);
  };
  let journal: Journal;
  let adopted = false;
  const text = section(OBSERVE.journal, OBSERVE.containers);
  if (text !== undefined) journal = parseJournal(text, where);
  else {
    const head = section(OBSERVE.noJournal, OBSERVE.history) ?? "";
    const history = section(OBSERVE.history, OBSERVE.containers) ?? "";
    journal = journalFromHistory(parseHistory(history), head.includes("compose-present"), now);
    adopted = journal.live !== null;
  }
  const containers: ContainerSeen[] = [];
  for (const line of (section(OBSERVE.containers, OBSERVE.login) ?? "").split("\n")) {
    const [id, name, image, state, service, status] = line.split("\t");
    if (id && name && image && state)
      containers.push({
        id,
        name: name.replace(/^\//, ""),
        image,
        state,
        service: service ?? "",
        status: status ?? "",
      });
  }
  const loginLeft = (section(OBSERVE.login, "\u0000") ?? "").trim() === "yes";
  return { journal, containers, loginLeft, adopted };
}

/** compose names the replacement container `<old id, 12 hex>_<name>` until it has removed the old one. */
export function isTempName(name: string): boolean {
  return /^[0-9a-f]{12}_/.test(name.replace(/^\//, ""));
}

/**
 * What to do before this run's own work. Called only under the lock, so an attempt in the journal is dead: its
 * holder either crashed, lost its connection, or could not write the journal's last step (a full disk).
 */
export function planRecovery(obs: Observation): RecoveryPlan {
  const { journal: j } = obs;
  const actions: RecoveryAction[] = [];
  const temp = obs.containers.filter((c) => isTempName(c.name));
  if (temp.length > 0) actions.push({ kind: "remove-containers", containers: temp });
  if (obs.loginLeft) actions.push({ kind: "logout" });
  const dead = j.attempt;
  if (!dead) return { dead: null, actions };
  const c = dead.candidate;
  if (j.strategy === "blue-green" && j.live?.colour) {
    const live = j.live.colour;
    actions.push({ kind: "route-proxy", colour: live }, { kind: "restore-live", slot: j.live });
    const replacedPrevious = c.colour !== undefined && c.colour !== live;
    if (replacedPrevious) actions.push({ kind: "remove-colour", colour: c.colour! });
    const keepPrevious = !replacedPrevious || j.previous?.colour !== c.colour;
    actions.push({
      kind: "clear-attempt",
      journal: { ...j, previous: keepPrevious ? j.previous : null, attempt: null },
    });
    return { dead, actions };
  }
  actions.push(j.live ? { kind: "restore-live", slot: j.live } : { kind: "stop-candidate", slot: c });
  actions.push({ kind: "clear-attempt", journal: { ...j, attempt: null } });
  return { dead, actions };
}

/** One line per action, for the `reconcile` phase's output and the history line of the recovery. */
export function describeAction(a: RecoveryAction): string {
  switch (a.kind) {
    case "remove-containers":
      return `remove ${a.containers.length} container(s) compose left mid-replacement: ${a.containers.map((c) => `${c.name} (${c.state})`).join(", ")}`;
    case "logout":
      return "log out the registry login a dead deploy left in the deploy's Docker config";
    case "restore-live":
      return `restore the live release ${short(a.slot)} from ${a.slot.composeFile}, health-gated`;
    case "stop-candidate":
      return `stop ${short(a.slot)}: a first deploy died before its health gate, nothing was live`;
    case "route-proxy":
      return `route the proxy to the live colour ${a.colour}`;
    case "remove-colour":
      return `remove the dead attempt's candidate colour ${a.colour}`;
    case "clear-attempt":
      return "clear the dead attempt from the journal";
  }
}

export function describeDead(a: JournalAttempt): string {
  return `a ${a.action} of ${short(a.candidate)} by ${a.holder} (attempt ${a.id}, started ${a.startedAt}) died in phase ${a.phase}`;
}

function short(s: Slot): string {
  return `sha ${s.sha.slice(0, 12)} (${s.digest.slice(0, 19)}…${s.colour ? `, ${s.colour}` : ""})`;
}

/** What `status` compares: the journal's live release against the service's container(s) actually there. */
export interface LiveCheck {
  live: Slot | null;
  /** The service's containers (temp-named ones excluded), with whether each runs the live image. */
  containers: { name: string; image: string; state: string; matches: boolean }[];
  /** One line per disagreement between the journal and the host; empty when they agree. */
  mismatches: string[];
}

export function checkLive(j: Journal, containers: readonly ContainerSeen[], services: readonly string[]): LiveCheck {
  const mine = containers.filter((c) => services.includes(c.service) && !isTempName(c.name));
  const live = j.live;
  const matches = (image: string) => live !== null && (image === live.image || image.endsWith(`@${live.digest}`));
  const out = mine.map((c) => ({ name: c.name, image: c.image, state: c.state, matches: matches(c.image) }));
  const mismatches: string[] = [];
  const running = out.filter((c) => c.state === "running");
  if (live && !running.some((c) => c.matches)) {
    mismatches.push(
      running.length === 0
        ? `the journal's live release ${short(live)} is not running (no running container for ${services.join("/")})`
        : `the journal's live release is ${short(live)}, but ${running.map((c) => `${c.name} runs ${c.image}`).join(", ")}`,
    );
  }
  if (!live && running.length > 0)
    mismatches.push(
      `the journal has no live release, but ${running.map((c) => `${c.name} runs ${c.image}`).join(", ")}`,
    );
  const temp = containers.filter((c) => isTempName(c.name));
  if (temp.length > 0)
    mismatches.push(`compose left ${temp.map((c) => c.name).join(", ")} mid-replacement (the next deploy removes it)`);
  return { live, containers: out, mismatches };
}
