/**
 * A local Vault for the tests. It speaks the parts of Vault's documented HTTP
 * API (https://developer.hashicorp.com/vault/api-docs) that the entrypoint
 * uses, with Vault's answers and error bodies, so that the product cannot
 * tell it from a real server: KV v1 and v2 mounts (versions, metadata, soft
 * delete and destroy), the CLI's mount preflight, kubernetes, approle and jwt
 * logins, token lookup and revoke, a leased database credential, namespaces
 * and ACL policies.
 *
 * For the tests it adds latency, injects faults (a status for N requests,
 * connection resets, stalls, a sealed server) and records every request.
 */
import crypto from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";

/** How the server listens: plain HTTP, or HTTPS with these PEM files. */
export interface FakeVaultOptions {
  tls?: {
    cert: string | Buffer;
    key: string | Buffer;
    /** With `requireClientCert`, the CA that client certificates chain to. */
    ca?: string | Buffer;
    requireClientCert?: boolean;
  };
}

/** A request the server received. */
export interface RecordedRequest {
  method: string;
  /** Without `/v1/` and without the query string. */
  path: string;
  query: string;
  namespace: string;
  token?: string;
  body?: Record<string, unknown>;
}

/** What a fault does to the requests it matches. */
export type FaultAction =
  | { kind: "status"; status: number; errors?: string[] }
  | { kind: "sealed" }
  | { kind: "reset" }
  | { kind: "stall" };

/** A fault for the next `times` requests whose path matches. */
export interface Fault {
  /** Exact path (without /v1/ and query) or a pattern; all paths if absent. */
  path?: string | RegExp;
  action: FaultAction;
  /** How many requests it hits; every one if absent. */
  times?: number;
}

interface Token {
  policies: string[];
  namespace: string;
  accessor: string;
  revoked: boolean;
  /** How it was made: `given` by the test, or the auth mount that issued it. */
  origin: string;
}

interface KvVersion {
  data: Record<string, unknown>;
  created: string;
  deleted: string;
  destroyed: boolean;
}

type Mount =
  | {
      type: "kv";
      kvVersion: 1 | 2;
      /** What the mount's `options` show; KV v1 enabled plainly has none. */
      options: Record<string, string> | null;
      secrets: Map<string, KvVersion[]>;
    }
  | { type: "database"; roles: Set<string> };

type LoginRole =
  | { type: "kubernetes"; jwt: string; policies: string[] }
  | { type: "jwt"; jwt: string; policies: string[] }
  | { type: "approle"; secretId?: string; policies: string[] };

interface AuthMount {
  type: "kubernetes" | "approle" | "jwt";
  /** Keyed by role name, or by role id for approle. */
  roles: Map<string, LoginRole & { name: string }>;
}

/** A leased secret the server handed out. */
export interface IssuedLease {
  id: string;
  token: string;
  revoked: boolean;
}

interface Answer {
  status: number;
  body?: unknown;
}

type Pending = { fault: Fault; remaining: number };

/** The fake server; `start` it, set it up, `close` it. */
export class FakeVault {
  /** Added before every answer. */
  latencyMs = 0;
  readonly requests: RecordedRequest[] = [];
  readonly leases: IssuedLease[] = [];
  readonly #server: http.Server;
  readonly #tokens = new Map<string, Token>();
  readonly #policies = new Map<string, string[]>();
  readonly #mounts = new Map<string, Mount>();
  readonly #auth = new Map<string, AuthMount>();
  readonly #faults: Pending[] = [];
  #address = "";

  private constructor(options: FakeVaultOptions) {
    const handler = (
      request: http.IncomingMessage,
      response: http.ServerResponse,
    ) => void this.#handle(request, response);
    this.#server =
      options.tls === undefined
        ? http.createServer(handler)
        : https.createServer(
            {
              cert: options.tls.cert,
              key: options.tls.key,
              ...(options.tls.ca === undefined ? {} : { ca: options.tls.ca }),
              requestCert: options.tls.requireClientCert === true,
              rejectUnauthorized: options.tls.requireClientCert === true,
            },
            handler,
          );
  }

  /** Listens on 127.0.0.1 on a free port. */
  static async start(options: FakeVaultOptions = {}): Promise<FakeVault> {
    const vault = new FakeVault(options);
    await new Promise<void>((resolve) =>
      vault.#server.listen(0, "127.0.0.1", resolve),
    );
    const { port } = vault.#server.address() as AddressInfo;
    const scheme = options.tls === undefined ? "http" : "https";
    vault.#address = `${scheme}://127.0.0.1:${port}`;
    return vault;
  }

  /** What VAULT_ADDR should be. */
  get address(): string {
    return this.#address;
  }

  /** Stops listening and drops every connection, stalled ones included. */
  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  // ---- set-up -----------------------------------------------------------

  /** A policy granting read on each path (Vault globs: `*` at the end, `+`). */
  addPolicy(name: string, paths: string[]): void {
    this.#policies.set(name, paths);
  }

  /** A token the test hands out, as `vault token create` would make. */
  addToken(token: string, policies: string[], namespace = ""): void {
    this.#tokens.set(token, {
      policies,
      namespace,
      accessor: randomId(24),
      revoked: false,
      origin: "given",
    });
  }

  /** `vault secrets enable -path=PATH -version=N kv`. */
  mountKv(
    path: string,
    version: 1 | 2,
    options: { namespace?: string; plainOptions?: boolean } = {},
  ): void {
    const mountOptions =
      version === 2
        ? { version: "2" }
        : options.plainOptions === true
          ? null
          : { version: "1" };
    this.#mounts.set(mountKey(options.namespace ?? "", path), {
      type: "kv",
      kvVersion: version,
      options: mountOptions,
      secrets: new Map(),
    });
  }

  /** `vault kv put`: a new version on KV v2, an overwrite on KV v1. */
  writeKv(
    mount: string,
    name: string,
    data: Record<string, unknown>,
    namespace = "",
  ): number {
    const kv = this.#kv(mount, namespace);
    const versions = kv.secrets.get(name) ?? [];
    const version = { data, created: now(), deleted: "", destroyed: false };
    if (kv.kvVersion === 1) versions.splice(0, versions.length);
    versions.push(version);
    kv.secrets.set(name, versions);
    return versions.length;
  }

  /** `vault kv delete -versions=N`: soft delete, the data stays. */
  deleteKvVersion(mount: string, name: string, version: number): void {
    this.#kvVersion(mount, name, version).deleted = now();
  }

  /** `vault kv destroy -versions=N`: the data is gone for good. */
  destroyKvVersion(mount: string, name: string, version: number): void {
    const entry = this.#kvVersion(mount, name, version);
    entry.destroyed = true;
    entry.data = {};
  }

  /** A database secrets engine with these roles. */
  mountDatabase(path: string, roles: string[], namespace = ""): void {
    this.#mounts.set(mountKey(namespace, path), {
      type: "database",
      roles: new Set(roles),
    });
  }

  /** A kubernetes auth role that accepts one service account token. */
  addKubernetesRole(
    role: string,
    jwt: string,
    policies: string[],
    mount = "kubernetes",
  ): void {
    this.#authMount(mount, "kubernetes").roles.set(role, {
      type: "kubernetes",
      name: role,
      jwt,
      policies,
    });
  }

  /** A jwt auth role that accepts one token. */
  addJwtRole(role: string, jwt: string, policies: string[], mount = "jwt") {
    this.#authMount(mount, "jwt").roles.set(role, {
      type: "jwt",
      name: role,
      jwt,
      policies,
    });
  }

  /** An approle; without a secret id it is `bind_secret_id=false`. */
  addAppRole(
    roleId: string,
    secretId: string | undefined,
    policies: string[],
    mount = "approle",
    namespace = "",
  ): void {
    this.#authMount(mount, "approle", namespace).roles.set(roleId, {
      type: "approle",
      name: `role-${roleId.slice(0, 4)}`,
      ...(secretId === undefined ? {} : { secretId }),
      policies,
    });
  }

  /** Adds a fault; faults are tried in the order they were added. */
  inject(fault: Fault): void {
    this.#faults.push({ fault, remaining: fault.times ?? Infinity });
  }

  /** Removes every fault. */
  clearFaults(): void {
    this.#faults.splice(0, this.#faults.length);
  }

  // ---- what the tests look at --------------------------------------------

  /** How many requests reached `path` (without /v1/ and query). */
  count(path: string, method?: string): number {
    return this.requests.filter(
      (request) =>
        request.path === path &&
        (method === undefined || request.method === method),
    ).length;
  }

  /** Tokens issued by a login, and whether each was revoked. */
  loginTokens(): Array<{ token: string; revoked: boolean; origin: string }> {
    return [...this.#tokens]
      .filter(([, token]) => token.origin !== "given")
      .map(([token, entry]) => ({
        token,
        revoked: entry.revoked,
        origin: entry.origin,
      }));
  }

  // ---- serving -------------------------------------------------------------

  async #handle(request: http.IncomingMessage, response: http.ServerResponse) {
    const recorded = await this.#record(request);
    if (this.latencyMs > 0) await delay(this.latencyMs);

    const fault = this.#takeFault(recorded.path);
    if (fault?.kind === "stall") return;
    if (fault?.kind === "reset") {
      request.socket.resetAndDestroy();
      return;
    }
    const answer =
      fault === undefined ? this.#route(recorded) : faultAnswer(fault);
    send(response, answer);
  }

  async #record(request: http.IncomingMessage): Promise<RecordedRequest> {
    const url = new URL(request.url ?? "/", "http://vault");
    const raw = await readBody(request);
    const token = request.headers["x-vault-token"];
    const namespace = request.headers["x-vault-namespace"];
    const recorded: RecordedRequest = {
      method: request.method ?? "GET",
      path: url.pathname.replace(/^\/v1\//, ""),
      query: url.search,
      namespace:
        typeof namespace === "string"
          ? namespace.replace(/^\/+|\/+$/g, "")
          : "",
      ...(typeof token === "string" && token !== "" ? { token } : {}),
      ...(raw === undefined ? {} : { body: raw }),
    };
    this.requests.push(recorded);
    return recorded;
  }

  #takeFault(path: string): FaultAction | undefined {
    const pending = this.#faults.find(
      (entry) => entry.remaining > 0 && pathMatches(entry.fault.path, path),
    );
    if (pending === undefined) return undefined;

    pending.remaining -= 1;
    return pending.fault.action;
  }

  #route(request: RecordedRequest): Answer {
    const path = request.path;
    if (path === "sys/health") return { status: 200, body: health() };
    const login = /^auth\/(.+)\/login$/.exec(path);
    if (login !== null && request.method === "POST") {
      return this.#login(login[1]!, request);
    }

    const token = this.#validToken(request);
    if (token === undefined) return denied();
    if (path.startsWith("sys/internal/ui/mounts/")) {
      return this.#mountInfo(
        path.slice("sys/internal/ui/mounts/".length),
        request,
        token,
      );
    }
    if (path === "auth/token/lookup-self" && request.method === "GET") {
      return {
        status: 200,
        body: envelope({ data: lookup(request.token!, token) }),
      };
    }
    if (path === "auth/token/revoke-self" && request.method === "POST") {
      this.#revoke(request.token!);
      return { status: 204 };
    }
    return this.#secret(request, token);
  }

  #validToken(request: RecordedRequest): Token | undefined {
    const token =
      request.token === undefined ? undefined : this.#tokens.get(request.token);
    if (token === undefined || token.revoked) return undefined;
    // A token lives in its namespace and is valid in the ones below it.
    const inside =
      request.namespace === token.namespace ||
      token.namespace === "" ||
      request.namespace.startsWith(`${token.namespace}/`);
    return inside ? token : undefined;
  }

  #allowed(token: Token, path: string): boolean {
    if (token.policies.includes("root")) return true;

    return token.policies.some((name) =>
      (this.#policies.get(name) ?? []).some((glob) => globMatches(glob, path)),
    );
  }

  // GET sys/internal/ui/mounts/PATH: the mount's description, or Vault's
  // preflight 403 when there is no mount or the token may see nothing in it.
  #mountInfo(rawPath: string, request: RecordedRequest, token: Token): Answer {
    const path = rawPath.endsWith("/") ? rawPath : `${rawPath}/`;
    const found = this.#findMount(request.namespace, path);
    const visible =
      found !== undefined &&
      (token.policies.includes("root") ||
        token.policies.some((name) =>
          (this.#policies.get(name) ?? []).some((glob) =>
            overlaps(glob, found.path),
          ),
        ));
    if (!visible) {
      return errors(403, [
        `preflight capability check returned 403, please ensure client's policies grant access to path "${path}"`,
      ]);
    }
    return {
      status: 200,
      body: envelope({ data: mountDescription(found.path, found.mount) }),
    };
  }

  #findMount(namespace: string, path: string) {
    let best: { path: string; mount: Mount } | undefined;
    for (const [key, mount] of this.#mounts) {
      const [mountNamespace, mountPath] = splitKey(key);
      if (mountNamespace !== namespace || !path.startsWith(mountPath)) continue;
      if (best === undefined || mountPath.length > best.path.length) {
        best = { path: mountPath, mount };
      }
    }
    return best;
  }

  #secret(request: RecordedRequest, token: Token): Answer {
    if (!this.#allowed(token, request.path)) return denied();

    const found = this.#findMount(request.namespace, `${request.path}/`);
    if (found === undefined) {
      return errors(404, [
        `no handler for route "${request.path}". route entry not found.`,
      ]);
    }
    if (request.method !== "GET") return errors(405, ["unsupported operation"]);

    const rest = request.path.slice(found.path.length);
    const mount = found.mount;
    if (mount.type === "database") {
      return this.#databaseCreds(found.path, mount.roles, rest, request);
    }
    return mount.kvVersion === 1
      ? kvV1Read(mount.secrets, rest)
      : kvV2Read(mount.secrets, rest, new URLSearchParams(request.query));
  }

  // A new username and password on every read, each with its own lease,
  // as the database engine does.
  #databaseCreds(
    mountPath: string,
    roles: Set<string>,
    rest: string,
    request: RecordedRequest,
  ): Answer {
    const role = /^creds\/([^/]+)$/.exec(rest)?.[1];
    if (role === undefined) return errors(404, ["unsupported path"]);
    if (!roles.has(role)) return errors(400, [`unknown role: ${role}`]);

    const lease = `${mountPath}creds/${role}/${randomId(24)}`;
    this.leases.push({ id: lease, token: request.token!, revoked: false });
    return {
      status: 200,
      body: envelope({
        lease_id: lease,
        renewable: true,
        lease_duration: 3600,
        data: {
          username: `v-token-${role}-${randomId(20)}`,
          password: `A1a-${randomId(20)}`,
        },
      }),
    };
  }

  #login(mountPath: string, request: RecordedRequest): Answer {
    const mount = this.#auth.get(mountKey(request.namespace, mountPath));
    if (mount === undefined) {
      return errors(400, [
        `no handler for route "auth/${mountPath}/login". route entry not found.`,
      ]);
    }
    const body = request.body ?? {};
    const checked =
      mount.type === "approle"
        ? approleLogin(mount, body)
        : roleLogin(mount, body);
    if ("status" in checked) return checked;

    return this.#issue(
      checked.policies,
      request.namespace,
      `auth/${mountPath}`,
      checked.name,
    );
  }

  #issue(
    policies: string[],
    namespace: string,
    origin: string,
    role: string,
  ): Answer {
    const token = `hvs.${randomId(24)}`;
    const accessor = randomId(24);
    this.#tokens.set(token, {
      policies,
      namespace,
      accessor,
      revoked: false,
      origin,
    });
    return {
      status: 200,
      body: envelope({
        auth: {
          client_token: token,
          accessor,
          policies: ["default", ...policies],
          token_policies: ["default", ...policies],
          metadata: { role },
          lease_duration: 3600,
          renewable: true,
          entity_id: "",
          token_type: "service",
          orphan: true,
        },
      }),
    };
  }

  // Revoking a token revokes the leases it created, as in Vault.
  #revoke(token: string): void {
    const entry = this.#tokens.get(token);
    if (entry !== undefined) entry.revoked = true;
    for (const lease of this.leases) {
      if (lease.token === token) lease.revoked = true;
    }
  }

  #kv(mount: string, namespace: string) {
    const found = this.#mounts.get(mountKey(namespace, mount));
    if (found?.type !== "kv") throw new Error(`no KV mount ${mount}`);
    return found;
  }

  #kvVersion(mount: string, name: string, version: number): KvVersion {
    const entry = this.#kv(mount, "").secrets.get(name)?.[version - 1];
    if (entry === undefined)
      throw new Error(`no version ${version} of ${name}`);
    return entry;
  }

  #authMount(path: string, type: AuthMount["type"], namespace = ""): AuthMount {
    const key = mountKey(namespace, path);
    const mount = this.#auth.get(key) ?? { type, roles: new Map() };
    this.#auth.set(key, mount);
    return mount;
  }
}

// ---- answers -----------------------------------------------------------------

function kvV1Read(secrets: Map<string, KvVersion[]>, name: string): Answer {
  const latest = secrets.get(name)?.at(-1);
  if (latest === undefined) return errors(404, []);

  return {
    status: 200,
    body: envelope({ lease_duration: 2764800, data: latest.data }),
  };
}

function kvV2Read(
  secrets: Map<string, KvVersion[]>,
  rest: string,
  query: URLSearchParams,
): Answer {
  if (rest.startsWith("metadata/")) return kvV2Metadata(secrets, rest.slice(9));
  if (!rest.startsWith("data/")) {
    return {
      status: 404,
      body: envelope({
        warnings: [
          "Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation.",
        ],
      }),
    };
  }
  const versions = secrets.get(rest.slice(5));
  const asked = Number(query.get("version") ?? "0");
  const number = asked === 0 ? (versions?.length ?? 0) : asked;
  const entry = versions?.[number - 1];
  if (entry === undefined) return errors(404, []);

  const metadata = versionMetadata(entry, number);
  if (entry.deleted !== "" || entry.destroyed) {
    return { status: 404, body: envelope({ data: { data: null, metadata } }) };
  }
  return {
    status: 200,
    body: envelope({ data: { data: entry.data, metadata } }),
  };
}

function kvV2Metadata(secrets: Map<string, KvVersion[]>, name: string): Answer {
  const versions = secrets.get(name);
  if (versions === undefined) return errors(404, []);

  return {
    status: 200,
    body: envelope({
      data: {
        cas_required: false,
        created_time: versions[0]!.created,
        current_version: versions.length,
        custom_metadata: null,
        delete_version_after: "0s",
        max_versions: 0,
        oldest_version: 0,
        updated_time: versions.at(-1)!.created,
        versions: Object.fromEntries(
          versions.map((entry, index) => [
            String(index + 1),
            {
              created_time: entry.created,
              deletion_time: entry.deleted,
              destroyed: entry.destroyed,
            },
          ]),
        ),
      },
    }),
  };
}

function versionMetadata(entry: KvVersion, version: number) {
  return {
    created_time: entry.created,
    custom_metadata: null,
    deletion_time: entry.deleted,
    destroyed: entry.destroyed,
    version,
  };
}

function roleLogin(
  mount: AuthMount,
  body: Record<string, unknown>,
): Answer | { policies: string[]; name: string } {
  const roleName = body["role"];
  if (typeof roleName !== "string" || roleName === "") {
    return errors(400, ["missing role"]);
  }
  const role = mount.roles.get(roleName);
  if (role === undefined) {
    return mount.type === "kubernetes"
      ? errors(400, [`invalid role name "${roleName}"`])
      : errors(400, [`role "${roleName}" could not be found`]);
  }
  if (role.type === "approle" || body["jwt"] !== role.jwt) {
    return mount.type === "kubernetes"
      ? errors(403, ["permission denied"])
      : errors(400, [
          "error validating token: error verifying token signature: no known key successfully validated the token signature",
        ]);
  }
  return { policies: role.policies, name: role.name };
}

function approleLogin(
  mount: AuthMount,
  body: Record<string, unknown>,
): Answer | { policies: string[]; name: string } {
  const roleId = body["role_id"];
  if (typeof roleId !== "string" || roleId === "") {
    return errors(400, ["missing role_id"]);
  }
  const role = mount.roles.get(roleId);
  if (role?.type !== "approle")
    return errors(400, ["invalid role or secret ID"]);
  if (role.secretId !== undefined && body["secret_id"] !== role.secretId) {
    return errors(400, ["invalid role or secret ID"]);
  }
  return { policies: role.policies, name: role.name };
}

function lookup(token: string, entry: Token) {
  return {
    accessor: entry.accessor,
    creation_ttl: 3600,
    display_name:
      entry.origin === "given" ? "token" : entry.origin.replace("/", "-"),
    entity_id: "",
    expire_time: null,
    id: token,
    namespace_path: entry.namespace === "" ? "" : `${entry.namespace}/`,
    policies: entry.policies,
    renewable: entry.origin !== "given",
    ttl: 3600,
    type: "service",
  };
}

function mountDescription(path: string, mount: Mount) {
  return {
    accessor: `${mount.type}_${randomId(8)}`,
    config: { default_lease_ttl: 0, force_no_cache: false, max_lease_ttl: 0 },
    description: "",
    external_entropy_access: false,
    local: false,
    options: mount.type === "kv" ? mount.options : null,
    path,
    plugin_version: "",
    running_plugin_version: "",
    running_sha256: "",
    seal_wrap: false,
    type: mount.type,
    uuid: crypto.randomUUID(),
  };
}

function health() {
  return {
    initialized: true,
    sealed: false,
    standby: false,
    performance_standby: false,
    server_time_utc: Math.floor(Date.now() / 1000),
    version: "1.17.0",
  };
}

function faultAnswer(action: FaultAction): Answer {
  if (action.kind === "sealed") return errors(503, ["Vault is sealed"]);
  if (action.kind !== "status") throw new Error(`no answer for ${action.kind}`);

  if (action.errors === undefined && gatewayStatuses.has(action.status)) {
    return { status: action.status, body: gatewayPage(action.status) };
  }
  return errors(action.status, action.errors ?? [defaultError(action.status)]);
}

// 502, 503 and 504 without errors come from a proxy in front of Vault,
// which answers an HTML page, not Vault's JSON.
const gatewayStatuses = new Set([502, 503, 504]);

function gatewayPage(status: number): string {
  return `<html><head><title>${status}</title></head><body><center><h1>${status}</h1></center><hr><center>nginx</center></body></html>`;
}

function defaultError(status: number): string {
  switch (status) {
    case 429:
      return "request path: rate limit quota exceeded";
    case 412:
      return "required index state not present";
    default:
      return status >= 500 ? "internal error" : "invalid request";
  }
}

// Vault's reply envelope: every field is present, most of them null.
function envelope(fields: Record<string, unknown>) {
  return {
    request_id: crypto.randomUUID(),
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: null,
    warnings: null,
    auth: null,
    mount_type: "",
    ...fields,
  };
}

function errors(status: number, messages: string[]): Answer {
  return { status, body: { errors: messages } };
}

function denied(): Answer {
  return errors(403, ["permission denied"]);
}

function send(response: http.ServerResponse, answer: Answer): void {
  if (answer.body === undefined) {
    response.writeHead(answer.status).end();
    return;
  }
  const html = typeof answer.body === "string";
  const text = html ? (answer.body as string) : JSON.stringify(answer.body);
  response
    .writeHead(answer.status, {
      "Content-Type": html ? "text/html" : "application/json",
      "Content-Length": Buffer.byteLength(text),
      "Cache-Control": "no-store",
    })
    .end(text);
}

// ---- helpers -------------------------------------------------------------------

async function readBody(
  request: http.IncomingMessage,
): Promise<Record<string, unknown> | undefined> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString("utf8");
  if (text === "") return undefined;

  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { unparsed: text };
  }
}

function pathMatches(pattern: string | RegExp | undefined, path: string) {
  if (pattern === undefined) return true;
  return typeof pattern === "string" ? pattern === path : pattern.test(path);
}

// Vault's policy globs: a `*` only at the end (prefix match), `+` for one
// path segment.
function globMatches(glob: string, path: string): boolean {
  const prefix = glob.endsWith("*");
  const body = (prefix ? glob.slice(0, -1) : glob)
    .split("+")
    .map((part) => part.replace(/[.*?^${}()|[\]\\]/g, "\\$&"))
    .join("[^/]+");
  return new RegExp(`^${body}${prefix ? "" : "$"}`).test(path);
}

// Whether a policy path grants anything under a mount: the mount preflight
// shows a mount to a token that may touch some path in it.
function overlaps(glob: string, mountPath: string): boolean {
  const stem = glob.replace(/\*$/, "").split("+")[0]!;
  return stem.startsWith(mountPath) || mountPath.startsWith(stem);
}

function mountKey(namespace: string, path: string): string {
  const clean = path.replace(/^\/+|\/+$/g, "");
  return `${namespace.replace(/^\/+|\/+$/g, "")}|${clean}/`;
}

function splitKey(key: string): [string, string] {
  const bar = key.indexOf("|");
  return [key.slice(0, bar), key.slice(bar + 1)];
}

function randomId(length: number): string {
  return crypto.randomBytes(length).toString("base64url").slice(0, length);
}

function now(): string {
  return new Date().toISOString();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
