// A minimal stand-in for the Dagger engine's session endpoint, for driving the module class through the REAL
// @dagger.io/dagger client without an engine. The SDK connects to http://127.0.0.1:$DAGGER_SESSION_PORT/query
// with `Authorization: Basic base64($DAGGER_SESSION_TOKEN:)` and sends one GraphQL document per call: a chain
// of fields (`loadDirectoryFromID(id:) { dockerBuild(...) { withLabel(...) { publish(address:) } } }`).
//
// It is deliberately small and honest: it parses every document with the `graphql` reference parser, answers
// only the fields the build/push/ship calls need (and, with `functionCall`, what the SDK's module entrypoint asks
// the engine when it is invoked: currentModule, currentFunctionCall, returnValue/returnError), keeps the state an engine would (what each container was
// built from, its labels, its registry auth), and answers anything else with a GraphQL error that is also
// recorded in `unexpected`, so a test fails loudly when the module starts asking for something new.
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { connection } from "@dagger.io/dagger";
import { Kind, parse, valueFromASTUntyped, type FieldNode, type SelectionSetNode } from "graphql";

export interface BuildState {
  directory: string;
  dockerfile?: string;
  buildArgs?: { name: string; value: string }[];
  platform?: string;
}

export interface ContainerState {
  /** undefined for `dag.container()` (the empty base of a multi-platform publish). */
  build?: BuildState;
  labels: { name: string; value: string }[];
  auth: { address: string; username: string; secret: string }[];
  /** A container made with `from` and then run (build/prepare's builder): each step in order. */
  from?: string;
  steps?: ContainerStep[];
}

export type ContainerStep =
  | { env: string; value: string }
  | { cache: string; path: string }
  | { directory: DirectoryState; path: string }
  | { workdir: string }
  | { exec: string[] };

/**
 * How a directory was made: one the test handed in (by id), or a chain of calls on one. `dockerBuild` records the
 * id of the directory it builds; `directoryState(id)` tells how that directory was made.
 */
export type DirectoryState =
  | { id: string }
  | { of: DirectoryState; directory: string }
  | { of: DirectoryState; without: string }
  | { of: DirectoryState; with: string; source: DirectoryState }
  | { container: ContainerState; directory: string };

export interface PublishCall {
  address: string;
  container: ContainerState;
  variants: ContainerState[];
  /** What the stand-in answered: `address@sha256:…`, the same digest for the same content. */
  answer: string;
}

type Obj =
  | { type: "Query" }
  | { type: "Module" }
  | { type: "FunctionCall" }
  | { type: "FunctionCallArgValue"; id: string; name: string; value: string }
  | { type: "Error"; id: string; message: string; values: { name: string; value: string }[] }
  | { type: "File"; id: string; contents: string }
  | { type: "Secret"; id: string }
  | { type: "Directory"; id: string }
  | { type: "CacheVolume"; id: string }
  | { type: "Container"; state: ContainerState };

class Unexpected extends Error {}

export interface StandInOptions {
  files?: Record<string, string>;
  secrets?: Record<string, string>;
  directories?: string[];
  /** Files inside those directories (`Directory.file(path)`), by directory id then path. */
  directoryFiles?: Record<string, Record<string, string>>;
  /**
   * What `publish` does. By default nothing leaves the stand-in and the answer is `address@<digest of the
   * content>`; an integration test can really push (with the secret the container's registry auth names).
   */
  onPublish?: (call: Omit<PublishCall, "answer">, secretPlaintext: (id: string) => string) => string;
  /** Builds from these Dockerfile paths fail when forced (sync/publish), as an engine reports a failed RUN. */
  failDockerfiles?: string[];
  /** A `withExec` whose first argument is one of these fails when its result is needed (a failing Gradle). */
  failCommands?: string[];
  /** The function call a module runtime is started for (what the engine tells the module's entrypoint). */
  functionCall?: FunctionCallContext;
}

export interface FunctionCallContext {
  module: string;
  /** The object the function is on ("" asks the module to register its types). */
  parentName: string;
  /** The function's name ("" is the constructor). */
  name: string;
  /** The parent object's state, as the engine keeps it (JSON). */
  parent: unknown;
  /** Argument values as the engine passes them (JSON values; objects by id). */
  args: Record<string, unknown>;
}

/** A failure the stand-in answers on purpose (like an engine's build error): not counted as unexpected. */
class BuildFailure extends Error {}

/** Thrown by an `onPublish` to answer as an engine whose registry refused the push (not counted as unexpected). */
export class EngineError extends BuildFailure {}

export class DaggerStandIn {
  readonly token = randomBytes(16).toString("hex");
  /** Every GraphQL document received, verbatim. */
  readonly queries: string[] = [];
  /** Every field the stand-in refused, with the reason. */
  readonly unexpected: string[] = [];
  readonly publishes: PublishCall[] = [];
  /** Secret ids whose plaintext the module asked for. */
  readonly plaintextReads: string[] = [];
  /** Every Directory.filter the module asked for: which directory, excluding what. */
  readonly filters: { directory: string; exclude: string[] }[] = [];
  /** What the module's entrypoint returned for `functionCall`: the JSON value, or the error (with its values). */
  readonly returned: { value?: string; error?: { message: string; values: { name: string; value: string }[] } }[] = [];
  port = 0;
  private readonly server = createServer((req, res) => void this.handle(req, res));
  private readonly containers = new Map<string, ContainerState>();
  private readonly errors = new Map<string, Extract<Obj, { type: "Error" }>>();
  private readonly derived = new Map<string, DirectoryState>();

  constructor(private readonly opts: StandInOptions) {}

  async start(): Promise<void> {
    // A module runtime keeps its session connection idle while it scans its sources; an engine does not close it.
    this.server.keepAliveTimeout = 0;
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(0, "127.0.0.1", resolve);
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /**
   * Run `fn` with the SDK's global client (`dag`) connected to this stand-in, as the module runtime connects it
   * to an engine: through DAGGER_SESSION_PORT / DAGGER_SESSION_TOKEN (restored afterwards).
   */
  async session<T>(fn: () => Promise<T>): Promise<T> {
    const keys = ["DAGGER_SESSION_PORT", "DAGGER_SESSION_TOKEN"] as const;
    const saved = keys.map((k) => process.env[k]);
    Object.assign(process.env, this.env());
    let out: T | undefined;
    try {
      await connection(async () => {
        out = await fn();
      });
    } finally {
      keys.forEach((k, i) => {
        if (saved[i] === undefined) delete process.env[k];
        else process.env[k] = saved[i];
      });
    }
    return out as T;
  }

  /** The environment the SDK reads to find its session (instead of provisioning an engine). */
  env(): Record<string, string> {
    return { DAGGER_SESSION_PORT: String(this.port), DAGGER_SESSION_TOKEN: this.token };
  }

  /** How the directory with this id was made (a directory the test handed in is just its id). */
  directoryState(id: string): DirectoryState {
    return this.derived.get(id) ?? { id };
  }

  /** A directory made by a call: a new id for it, its making remembered. */
  private derive(state: DirectoryState): Obj {
    const id = `Directory:${this.digestOf(state).slice(7, 23)}`;
    this.derived.set(id, state);
    return { type: "Directory", id };
  }

  /** The state behind a container id this stand-in handed out. */
  container(id: string): ContainerState | undefined {
    return this.containers.get(id);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "POST" || req.url !== "/query") {
      this.unexpected.push(`${req.method} ${req.url}`);
      return reply(404, { errors: [{ message: `stand-in: no ${req.method} ${req.url}` }] });
    }
    if (req.headers.authorization !== `Basic ${Buffer.from(`${this.token}:`).toString("base64")}`) {
      this.unexpected.push("request without the session token");
      return reply(401, { errors: [{ message: "stand-in: bad session token" }] });
    }
    let query = "";
    try {
      query = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { query: string }).query;
      this.queries.push(query);
      const doc = parse(query);
      const op = doc.definitions[0];
      if (doc.definitions.length !== 1 || op?.kind !== Kind.OPERATION_DEFINITION || op.operation !== "query") {
        throw new Unexpected("expected exactly one query operation");
      }
      reply(200, { data: this.select({ type: "Query" }, op.selectionSet) });
    } catch (e) {
      const message = `stand-in: ${(e as Error).message}`;
      if (e instanceof Unexpected) this.unexpected.push(message);
      else if (!(e instanceof BuildFailure)) this.unexpected.push(`${message} (in ${query})`);
      reply(200, { data: null, errors: [{ message }] });
    }
  }

  private select(obj: Obj, set: SelectionSetNode): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const sel of set.selections) {
      if (sel.kind === Kind.INLINE_FRAGMENT && sel.typeCondition?.name.value === obj.type) {
        Object.assign(out, this.select(obj, sel.selectionSet));
        continue;
      }
      if (sel.kind !== Kind.FIELD) throw new Unexpected(`fragment on ${obj.type}`);
      const value = this.resolve(obj, sel);
      if (sel.selectionSet) {
        const objects = Array.isArray(value) ? value : [value];
        for (const v of objects)
          if (typeof v !== "object" || v === null || !("type" in v))
            throw new Unexpected(`${obj.type}.${sel.name.value} is a leaf, got a selection`);
        const selected = objects.map((v) => this.select(v as Obj, sel.selectionSet!));
        out[sel.name.value] = Array.isArray(value) ? selected : selected[0];
      } else {
        if (typeof value === "object" && value !== null && "type" in value) {
          throw new Unexpected(`${obj.type}.${sel.name.value} is an object, needs a selection`);
        }
        out[sel.name.value] = value;
      }
    }
    return out;
  }

  private resolve(obj: Obj, field: FieldNode): unknown {
    const name = field.name.value;
    const args: Record<string, unknown> = {};
    for (const a of field.arguments ?? []) args[a.name.value] = valueFromASTUntyped(a.value);
    const only = (...allowed: string[]) => {
      const extra = Object.keys(args).filter((k) => !allowed.includes(k));
      if (extra.length > 0) throw new Unexpected(`${obj.type}.${name}: unexpected argument(s) ${extra.join(", ")}`);
    };
    const str = (k: string) => {
      if (typeof args[k] !== "string") throw new Unexpected(`${obj.type}.${name}: argument ${k} must be a string`);
      return args[k] as string;
    };
    switch (`${obj.type}.${name}`) {
      case "Query.loadFileFromID": {
        only("id");
        const id = str("id");
        if (!(id in (this.opts.files ?? {}))) throw new Unexpected(`no file ${id}`);
        return { type: "File", id, contents: this.opts.files![id]! };
      }
      case "Query.loadSecretFromID": {
        only("id");
        const id = str("id");
        if (!(id in (this.opts.secrets ?? {}))) throw new Unexpected(`no secret ${id}`);
        return { type: "Secret", id };
      }
      case "Query.loadDirectoryFromID": {
        only("id");
        const id = str("id");
        if (!(this.opts.directories ?? []).includes(id) && !this.derived.has(id))
          throw new Unexpected(`no directory ${id}`);
        return { type: "Directory", id };
      }
      case "Query.cacheVolume":
        only("key");
        return { type: "CacheVolume", id: `CacheVolume:${str("key")}` };
      case "Directory.directory":
        only("path");
        return this.derive({ of: this.directoryState((obj as { id: string }).id), directory: str("path") });
      case "Directory.withoutDirectory":
        only("path");
        return this.derive({ of: this.directoryState((obj as { id: string }).id), without: str("path") });
      case "Directory.withDirectory": {
        only("path", "source");
        const source = this.knownDirectory(str("source"));
        return this.derive({ of: this.directoryState((obj as { id: string }).id), with: str("path"), source });
      }
      case "Container.from": {
        only("address");
        const s = (obj as { state: ContainerState }).state;
        if (s.build || s.from) throw new Unexpected("from on a container that already has a base");
        return { type: "Container", state: { ...s, from: str("address"), steps: [] } };
      }
      case "Container.withEnvVariable":
        only("name", "value");
        return this.step(obj, { env: str("name"), value: str("value") });
      case "Container.withMountedCache": {
        only("path", "cache");
        const cache = str("cache");
        if (!cache.startsWith("CacheVolume:"))
          throw new Unexpected(`withMountedCache: ${cache} is not a cache volume id`);
        return this.step(obj, { cache: cache.slice("CacheVolume:".length), path: str("path") });
      }
      case "Container.withDirectory":
        only("path", "source");
        return this.step(obj, { directory: this.knownDirectory(str("source")), path: str("path") });
      case "Container.withWorkdir":
        only("path");
        return this.step(obj, { workdir: str("path") });
      case "Container.withExec":
        only("args");
        if (!Array.isArray(args.args)) throw new Unexpected("withExec: args must be a list");
        return this.step(obj, { exec: args.args as string[] });
      case "Container.directory": {
        only("path");
        const s = (obj as { state: ContainerState }).state;
        if (!s.from) throw new Unexpected("Container.directory on a container that was not made with from");
        return this.derive({ container: s, directory: str("path") });
      }
      case "Query.loadContainerFromID": {
        only("id");
        const state = this.containers.get(str("id"));
        if (!state) throw new Unexpected(`no container ${String(args.id)}`);
        return { type: "Container", state };
      }
      case "Query.container":
        only();
        return { type: "Container", state: { labels: [], auth: [] } };
      case "Query.currentModule":
        only();
        this.call();
        return { type: "Module" };
      case "Module.name":
        only();
        return this.call().module;
      case "Query.currentFunctionCall":
        only();
        this.call();
        return { type: "FunctionCall" };
      case "FunctionCall.parentName":
        only();
        return this.call().parentName;
      case "FunctionCall.name":
        only();
        return this.call().name;
      case "FunctionCall.parent":
        only();
        return JSON.stringify(this.call().parent);
      case "FunctionCall.inputArgs":
        only();
        return Object.entries(this.call().args).map(([n, v]) => this.argValue(n, v));
      case "Query.node": {
        only("id");
        const id = str("id");
        // The SDK loads an object argument by id with `node(id:) { ... on Directory }`.
        if ((this.opts.directories ?? []).includes(id)) return { type: "Directory", id };
        const arg = Object.entries(this.call().args).find(([n]) => `FunctionCallArgValue:${n}` === id);
        if (!arg) throw new Unexpected(`no node ${id}`);
        return this.argValue(arg[0], arg[1]);
      }
      case "FunctionCallArgValue.id":
      case "FunctionCallArgValue.name":
      case "FunctionCallArgValue.value":
        only();
        return (obj as Record<string, string>)[name];
      case "FunctionCall.returnValue":
        only("value");
        this.returned.push({ value: str("value") });
        return null;
      case "Query.error": {
        only("message");
        const e = { type: "Error" as const, id: `Error:${this.errors.size}`, message: str("message"), values: [] };
        this.errors.set(e.id, e);
        return e;
      }
      case "Error.withValue": {
        only("name", "value");
        const from = obj as Extract<Obj, { type: "Error" }>;
        const e = {
          ...from,
          id: `Error:${this.errors.size}`,
          values: [...from.values, { name: str("name"), value: str("value") }],
        };
        this.errors.set(e.id, e);
        return e;
      }
      case "Error.id":
        only();
        return (obj as { id: string }).id;
      case "FunctionCall.returnError": {
        only("error");
        const e = this.errors.get(str("error"));
        if (!e) throw new Unexpected(`returnError: unknown error ${String(args.error)}`);
        this.returned.push({ error: { message: e.message, values: e.values } });
        return null;
      }
      case "File.contents":
        only();
        return (obj as { contents: string }).contents;
      case "Directory.filter": {
        only("exclude");
        const dir = (obj as { id: string }).id;
        this.filters.push({ directory: dir, exclude: (args.exclude as string[] | undefined) ?? [] });
        // The files the tests give are never under an excluded path, so the filtered view holds the same files.
        return { type: "Directory", id: dir };
      }
      case "Directory.exists": {
        only("path");
        const dir = (obj as { id: string }).id;
        return this.opts.directoryFiles?.[dir]?.[str("path")] !== undefined;
      }
      case "Directory.file": {
        only("path");
        const dir = (obj as { id: string }).id;
        const contents = this.opts.directoryFiles?.[dir]?.[str("path")];
        if (contents === undefined) throw new Unexpected(`no file ${String(args.path)} in directory ${dir}`);
        return { type: "File", id: `${dir}:${str("path")}`, contents };
      }
      case "File.id":
      case "Secret.id":
      case "CacheVolume.id":
      case "Directory.id":
        only();
        return (obj as { id: string }).id;
      case "Secret.plaintext": {
        only();
        const id = (obj as { id: string }).id;
        this.plaintextReads.push(id);
        return this.opts.secrets![id];
      }
      case "Directory.dockerBuild": {
        only("dockerfile", "buildArgs", "platform");
        const build: BuildState = { directory: (obj as { id: string }).id };
        if (args.dockerfile !== undefined) build.dockerfile = str("dockerfile");
        if (args.platform !== undefined) build.platform = str("platform");
        if (args.buildArgs !== undefined) build.buildArgs = args.buildArgs as BuildState["buildArgs"];
        return { type: "Container", state: { build, labels: [], auth: [] } };
      }
      case "Container.withLabel": {
        only("name", "value");
        const s = (obj as { state: ContainerState }).state;
        return {
          type: "Container",
          state: { ...s, labels: [...s.labels, { name: str("name"), value: str("value") }] },
        };
      }
      case "Container.withRegistryAuth": {
        only("address", "username", "secret");
        const secret = str("secret");
        if (!(secret in (this.opts.secrets ?? {})))
          throw new Unexpected(`withRegistryAuth: secret \`${secret}\` is not a secret id`);
        const s = (obj as { state: ContainerState }).state;
        return {
          type: "Container",
          state: { ...s, auth: [...s.auth, { address: str("address"), username: str("username"), secret }] },
        };
      }
      case "Container.id":
      case "Container.sync": {
        only();
        const s = (obj as { state: ContainerState }).state;
        if (name === "sync") this.force(s);
        const id = `Container:${this.digestOf(s).slice(7, 23)}`;
        this.containers.set(id, s);
        return id;
      }
      case "Container.publish": {
        only("address", "platformVariants");
        const container = (obj as { state: ContainerState }).state;
        const ids = (args.platformVariants as string[] | undefined) ?? [];
        const variants = ids.map((id) => {
          const v = this.containers.get(id);
          if (!v) throw new Unexpected(`publish: platformVariants has unknown container ${id}`);
          return v;
        });
        if (!container.build && variants.length === 0)
          throw new Unexpected("publish of an empty container without variants");
        for (const v of [container, ...variants]) this.force(v);
        // The digest covers the image content, not the registry auth, like an engine's.
        const content =
          variants.length > 0
            ? variants.map((v) => ({ build: v.build, labels: v.labels }))
            : { build: container.build, labels: container.labels };
        const answer = this.opts.onPublish
          ? this.opts.onPublish({ address: str("address"), container, variants }, (id) => this.opts.secrets![id]!)
          : `${str("address")}@${this.digestOf(content)}`;
        this.publishes.push({ address: str("address"), container, variants, answer });
        return answer;
      }
      default:
        throw new Unexpected(`${obj.type}.${name} is not something this stand-in answers`);
    }
  }

  private call(): FunctionCallContext {
    if (!this.opts.functionCall) throw new Unexpected("no function call: this stand-in was not started for one");
    return this.opts.functionCall;
  }

  private argValue(name: string, value: unknown): Obj {
    return { type: "FunctionCallArgValue", id: `FunctionCallArgValue:${name}`, name, value: JSON.stringify(value) };
  }

  /** A step on a `from` container (the SDK sends the chain; each step is a new state). */
  private step(obj: Obj, step: ContainerStep): Obj {
    const s = (obj as { state: ContainerState }).state;
    if (!s.from) throw new Unexpected(`${Object.keys(step)[0]} on a container that was not made with from`);
    return { type: "Container", state: { ...s, steps: [...(s.steps ?? []), step] } };
  }

  private knownDirectory(id: string): DirectoryState {
    if (!(this.opts.directories ?? []).includes(id) && !this.derived.has(id))
      throw new Unexpected(`no directory ${id}`);
    return this.directoryState(id);
  }

  /** The execs a directory's making runs (what an engine runs when the directory is needed). */
  private execsOf(d: DirectoryState): string[][] {
    if ("container" in d)
      return (d.container.steps ?? []).flatMap((s) => [
        ...("directory" in s ? this.execsOf(s.directory) : []),
        ...("exec" in s ? [s.exec] : []),
      ]);
    if ("id" in d) return [];
    return [...this.execsOf(d.of), ...("source" in d ? this.execsOf(d.source) : [])];
  }

  /** Run a build, as sync/publish make an engine do: fails for the Dockerfiles listed in failDockerfiles. */
  private force(s: ContainerState): void {
    if (s.build) {
      const failing = this.execsOf(this.directoryState(s.build.directory)).find((e) =>
        (this.opts.failCommands ?? []).includes(e[0]!),
      );
      if (failing)
        throw new BuildFailure(
          `process "${failing.join(" ")}" did not complete successfully: exit code: 1\n\nStdout:\nFAILURE: Build failed with an exception.`,
        );
    }
    if (s.build && (this.opts.failDockerfiles ?? []).includes(s.build.dockerfile ?? "Dockerfile")) {
      throw new BuildFailure(
        `process "/bin/sh -c ./gradlew bootJar" did not complete successfully: exit code: 1 (${s.build.dockerfile})`,
      );
    }
  }

  private digestOf(value: unknown): string {
    return `sha256:${createHash("sha256").update(JSON.stringify(value)).digest("hex")}`;
  }
}
