// What the swarm strategy reads from the manager, pure: the sections its observer (host/swarm.ts) adds to
// `observe` and to the update watch — this node, the nodes, the stack's services and their tasks — parsed, and
// judged: per node, which task runs which digest, in which state, how healthy; and where that differs from the
// journal's live release. A task's health comes from Swarm itself: a task whose service has a healthcheck is
// reported running only once the check passed, and fails ("unhealthy container") when it stops passing.
import type { HostView } from "./host/view.js";

export interface SwarmNodeSeen {
  id: string;
  hostname: string;
  /** Ready, Down, Unknown, Disconnected */
  status: string;
  availability: string;
  /** Leader, Reachable, Unreachable, or "" (a worker). */
  manager: string;
  self: boolean;
}

export interface SwarmServiceSeen {
  /** `<stack>_<service>` */
  name: string;
  id: string;
  image: string;
  replicas: number | "global";
  /** .UpdateStatus.State: updating, completed, paused, rollback_started, rollback_completed, rollback_paused, "". */
  update: string;
  definition: string;
  release: string;
  healthcheck: boolean;
  message: string;
}

export interface SwarmTaskSeen {
  id: string;
  serviceId: string;
  slot: string;
  nodeId: string;
  image: string;
  desired: string;
  state: string;
  release: string;
  since: string;
  error: string;
}

export interface SwarmSeen {
  /** The observer ran (the journal names swarm): without it nothing is known. */
  observed: boolean;
  /** This node's swarm state (active, inactive, …) and whether it is a manager. */
  state: string;
  manager: boolean;
  nodeId: string;
  nodes: SwarmNodeSeen[];
  services: SwarmServiceSeen[];
  tasks: SwarmTaskSeen[];
  /** The manager API's last error (a leader election, …). */
  error: string;
}

const rows = (text: string | undefined, n: number): string[][] =>
  (text ?? "")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => l.split("\t"))
    .filter((r) => r.length >= n);

/** The swarm sections of an observe (or a watch's) output. */
export function parseSwarm(s: ReadonlyMap<string, string> | undefined): SwarmSeen {
  const node = (s?.get("swarm-node") ?? "").trim().split(/\s+/);
  return {
    observed: s?.has("swarm-node") === true,
    state: node[0] ?? "",
    manager: node[1] === "true",
    nodeId: node[2] ?? "",
    nodes: rows(s?.get("swarm-nodes"), 6).map(([id, hostname, status, availability, manager, self]) => ({
      id: id!,
      hostname: hostname!,
      status: status!,
      availability: availability!,
      manager: manager!,
      self: self === "true",
    })),
    services: rows(s?.get("swarm-services"), 8).map(
      ([name, id, image, replicas, update, definition, release, health, ...message]) => ({
        name: name!,
        id: id!,
        image: image!,
        replicas: replicas === "global" ? "global" : Number(replicas),
        update: update!,
        definition: definition!,
        release: release!,
        healthcheck: health === "yes",
        message: message.join(" "),
      }),
    ),
    tasks: rows(s?.get("swarm-tasks"), 9).map(
      ([id, serviceId, slot, nodeId, image, desired, state, release, since, ...error]) => ({
        id: id!,
        serviceId: serviceId!,
        slot: slot!,
        nodeId: nodeId!,
        image: image!,
        desired: desired!,
        state: state!,
        release: release!,
        since: since!,
        error: error.join(" "),
      }),
    ),
    error: (s?.get("swarm-error") ?? "").trim(),
  };
}

const cache = new WeakMap<HostView, SwarmSeen>();

/** The swarm part of a host view (parsed once per view). */
export function swarmOf(view: HostView): SwarmSeen {
  let x = cache.get(view);
  if (!x) cache.set(view, (x = parseSwarm(view.sections)));
  return x;
}

export const serviceOf = (sw: SwarmSeen, stack: string, service: string): SwarmServiceSeen | undefined =>
  sw.services.find((x) => x.name === `${stack}_${service}`);

export const tasksOf = (sw: SwarmSeen, svc: SwarmServiceSeen | undefined): SwarmTaskSeen[] =>
  svc ? sw.tasks.filter((t) => t.serviceId === svc.id) : [];

/** The digest of an image reference (`…@sha256:…`), or "". */
export const digestOf = (image: string): string => /@(sha256:[0-9a-f]{64})$/.exec(image)?.[1] ?? "";

/** How healthy a task is, as Swarm reports it (see the file header). */
export function taskHealth(t: SwarmTaskSeen, svc: SwarmServiceSeen | undefined): string {
  if (/unhealthy/.test(t.error)) return "unhealthy";
  if (!svc?.healthcheck) return "no healthcheck";
  if (t.state === "running") return "healthy";
  if (t.state === "starting") return "starting";
  return "-";
}

export const hostnameOf = (sw: SwarmSeen, nodeId: string): string =>
  sw.nodes.find((n) => n.id === nodeId)?.hostname ?? (nodeId ? nodeId.slice(0, 12) : "(unassigned)");

/** The tasks Swarm means to run (desired running), of the stack's service `service`. */
export const desiredTasks = (sw: SwarmSeen, svc: SwarmServiceSeen | undefined): SwarmTaskSeen[] =>
  tasksOf(sw, svc).filter((t) => t.desired === "running");
