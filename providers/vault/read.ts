/**
 * Reading one secret. The mount's KV version is found the way the Vault CLI
 * finds it (`vault kv get`): `GET sys/internal/ui/mounts/PATH`, whose
 * `options.version` is "2" for a versioned store. A KV v2 path gets `data/`
 * after the mount unless the user wrote it; any other engine's path (KV v1,
 * `database/creds/ROLE`) is read as written.
 */
import { EntrypointError, ExitCode } from "../../src/errors.ts";
import type { VaultReference } from "../../src/references.ts";
import type { Lease, Secret } from "../types.ts";
import { VaultRequestError } from "./http.ts";
import type { RetryPolicy, VaultHttp } from "./http.ts";
import { otherStatusError, statusOf, transportError } from "./errors.ts";

/** A secrets engine mount, as the preflight request describes it. */
export interface Mount {
  /** With a trailing slash, e.g. `secret/`; empty when Vault did not say. */
  path: string;
  type: string;
  kvVersion: 1 | 2;
}

/** What a read needs from the run. */
export interface ReadDeps {
  http: VaultHttp;
  address: string;
  policy: RetryPolicy;
  /** True when the token is known to be invalid (asked after a 403). */
  tokenInvalid: () => Promise<boolean>;
}

/**
 * Finds mounts once per run: requests for paths under a mount already found
 * need no preflight.
 */
export class MountCache {
  readonly #found: Mount[] = [];
  readonly #pending = new Set<Promise<Mount>>();

  /** The mount that holds `secretPath`. */
  async mountOf(secretPath: string, deps: ReadDeps): Promise<Mount> {
    const known = this.#known(secretPath);
    if (known !== undefined) return known;

    // A preflight in flight may be for the same mount: wait for it first.
    // This runs preflights for different mounts one after another, which
    // costs one round trip per mount once per run.
    if (this.#pending.size > 0) {
      await Promise.allSettled([...this.#pending]);
      return this.mountOf(secretPath, deps);
    }
    // From here to `add` nothing awaits, so no other read starts a second
    // preflight for this mount meanwhile.
    const pending = preflight(secretPath, deps);
    this.#pending.add(pending);
    try {
      const mount = await pending;
      if (mount.path !== "") this.#found.push(mount);
      return mount;
    } finally {
      this.#pending.delete(pending);
    }
  }

  #known(secretPath: string): Mount | undefined {
    return this.#found.find((mount) => secretPath.startsWith(mount.path));
  }
}

async function preflight(secretPath: string, deps: ReadDeps): Promise<Mount> {
  let answer: unknown;
  try {
    answer = await deps.http.send(
      { method: "GET", path: `sys/internal/ui/mounts/${secretPath}` },
      deps.policy,
    );
  } catch (error) {
    throw await preflightError(secretPath, error, deps);
  }
  return mountFrom(answer);
}

function mountFrom(answer: unknown): Mount {
  const data = (answer as { data?: Record<string, unknown> } | null)?.data;
  const options = data?.["options"] as Record<string, unknown> | null;
  const type = typeof data?.["type"] === "string" ? data["type"] : "";
  const mountPath = typeof data?.["path"] === "string" ? data["path"] : "";
  return {
    path:
      mountPath === "" || mountPath.endsWith("/") ? mountPath : `${mountPath}/`,
    type,
    kvVersion: options?.["version"] === "2" ? 2 : 1,
  };
}

async function preflightError(
  secretPath: string,
  error: unknown,
  deps: ReadDeps,
): Promise<EntrypointError> {
  if (!(error instanceof VaultRequestError)) throw error;

  const subject = `vault secret ${secretPath}`;
  const transport = transportError(subject, error, deps);
  if (transport !== undefined) return transport;
  // Every Vault since 0.10 (2018) answers this endpoint for any path, with
  // 403 at worst; a 404 comes from a server that is not Vault. Older Vaults
  // are not supported.
  if (statusOf(error) === 404) {
    return new EntrypointError(
      `${subject}: the server at VAULT_ADDR (${deps.address}) answered 404 to Vault's mount lookup; check that VAULT_ADDR points at Vault`,
      ExitCode.config,
    );
  }
  if (statusOf(error) !== 403) return otherStatusError(subject, error);

  if (await deps.tokenInvalid()) return invalidTokenError(subject);
  // Vault answers 403 both for a path under no mount and for a policy that
  // grants nothing under the mount, so that mounts cannot be probed.
  return new EntrypointError(
    `${subject}: permission denied (403) finding its mount; check that the path starts with a mount (vault secrets list) and that the policy of the token allows read on it`,
    ExitCode.denied,
  );
}

function invalidTokenError(subject: string): EntrypointError {
  return new EntrypointError(
    `${subject}: permission denied (403); the Vault token is not valid (expired, revoked, or from another namespace than VAULT_NAMESPACE)`,
    ExitCode.denied,
  );
}

/** Reads one secret; throws an EntrypointError that says what to change. */
export async function readSecret(
  reference: VaultReference,
  mounts: MountCache,
  deps: ReadDeps,
): Promise<Secret> {
  const mount = await mounts.mountOf(reference.path, deps);
  const apiPath = apiPathOf(reference, mount);
  let answer: unknown;
  try {
    answer = await deps.http.send(
      { method: "GET", path: apiPath },
      deps.policy,
    );
  } catch (error) {
    throw await readError({ reference, mount, apiPath, error }, deps);
  }
  return secretFrom(answer, { reference, mount, apiPath });
}

interface ReadTarget {
  reference: VaultReference;
  mount: Mount;
  /** The path requested, with KV v2's `data/` and `?version=`. */
  apiPath: string;
}

/** Where the read goes: KV v2 needs `data/` after the mount. */
export function apiPathOf(reference: VaultReference, mount: Mount): string {
  const version = reference.version;
  // `secret` names the mount `secret/` itself: read as a secret's name, it
  // would become secret/data/secret on KV v2, another secret altogether.
  if (`${reference.path.replace(/\/+$/, "")}/` === mount.path) {
    throw mountItselfError(reference, mount);
  }
  if (mount.kvVersion === 1) {
    if (version !== undefined) throw versionError(reference, mount);
    return reference.path;
  }

  const rest = reference.path.startsWith(mount.path)
    ? reference.path.slice(mount.path.length)
    : reference.path;
  if (/^data\/*$/.test(rest)) throw mountItselfError(reference, mount);

  const dataPath = rest.startsWith("data/")
    ? `${mount.path}${rest}`
    : `${mount.path}data/${rest}`;
  return version === undefined ? dataPath : `${dataPath}?version=${version}`;
}

function mountItselfError(reference: VaultReference, mount: Mount) {
  return new EntrypointError(
    `vault secret ${reference.path}: the reference names the mount ${mount.path} and must name a secret under it (e.g. vault:${mount.path}app${selectorOf(reference)})`,
    ExitCode.invalid,
  );
}

// The key as written, without bank-vaults' #VERSION.
function selectorOf(reference: VaultReference): string {
  const key = reference.text.split("#")[1];
  return key === undefined ? "" : `#${key}`;
}

function versionError(reference: VaultReference, mount: Mount) {
  const engine =
    mount.type === "kv" || mount.type === "generic" || mount.type === ""
      ? "KV version 1, which keeps no versions"
      : `a ${mount.type} secrets engine, which has no versions`;
  return new EntrypointError(
    `vault secret ${reference.path}: version ${reference.version} was asked, but the mount ${mount.path || reference.path} is ${engine}; remove ?version=`,
    ExitCode.invalid,
  );
}

function secretFrom(answer: unknown, target: ReadTarget): Secret {
  const body = (answer ?? {}) as Record<string, unknown>;
  const outer = body["data"] as Record<string, unknown> | null | undefined;
  const data = target.mount.kvVersion === 2 ? outer?.["data"] : outer;
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new EntrypointError(
      `vault secret ${target.reference.path}: Vault returned no data at ${target.apiPath}`,
      ExitCode.notFound,
    );
  }
  const lease = leaseOf(body);
  return {
    kind: "data",
    data: data as Record<string, unknown>,
    ...(lease === undefined ? {} : { lease }),
  };
}

// KV v1 answers carry a lease_duration (a refresh hint) but no lease_id:
// only a lease_id makes a lease.
function leaseOf(body: Record<string, unknown>): Lease | undefined {
  const id = body["lease_id"];
  if (typeof id !== "string" || id === "") return undefined;

  const duration = body["lease_duration"];
  return {
    id,
    durationSeconds: typeof duration === "number" ? duration : 0,
    renewable: body["renewable"] === true,
  };
}

async function readError(
  target: ReadTarget & { error: unknown },
  deps: ReadDeps,
): Promise<EntrypointError> {
  const { error, reference, apiPath } = target;
  if (!(error instanceof VaultRequestError)) throw error;

  const subject = `vault secret ${reference.path}`;
  const transport = transportError(subject, error, deps);
  if (transport !== undefined) return transport;

  switch (statusOf(error)) {
    case 403:
      if (await deps.tokenInvalid()) return invalidTokenError(subject);
      return new EntrypointError(
        `${subject}: permission denied (403); check that the policy of the token allows read on ${withoutQuery(apiPath)}`,
        ExitCode.denied,
      );
    case 404:
      return notFoundError(target, error);
    default:
      return otherStatusError(subject, error);
  }
}

function notFoundError(
  target: ReadTarget,
  error: VaultRequestError,
): EntrypointError {
  const { reference, mount } = target;
  const subject = `vault secret ${reference.path}`;
  const deleted =
    mount.kvVersion === 2 ? deletedVersion(error, reference) : undefined;
  if (deleted !== undefined) {
    return new EntrypointError(`${subject}: ${deleted}`, ExitCode.notFound);
  }
  return new EntrypointError(
    `${subject}: not found (404) at ${withoutQuery(target.apiPath)}${versionNote(reference)}; ${kvHint(reference, mount)}`,
    ExitCode.notFound,
  );
}

// KV v2 answers a deleted or destroyed version with 404 and the version's
// metadata in `data.metadata`.
function deletedVersion(
  error: VaultRequestError,
  reference: VaultReference,
): string | undefined {
  const failure = error.failure;
  const body = failure.kind === "status" ? failure.body : undefined;
  const metadata = (
    body as { data?: { metadata?: Record<string, unknown> } } | undefined
  )?.data?.metadata;
  if (metadata === undefined || metadata === null) return undefined;

  const version = metadata["version"];
  const which =
    reference.version === undefined
      ? `the latest version (${version})`
      : `version ${version}`;
  if (metadata["destroyed"] === true) {
    return `${which} was destroyed and can no longer be read; write a new version or read another with ?version=`;
  }
  const when = metadata["deletion_time"];
  return `${which} was deleted${typeof when === "string" && when !== "" ? ` at ${when}` : ""}; restore it with vault kv undelete -versions=${version} ${reference.path}, or read another with ?version=`;
}

function versionNote(reference: VaultReference): string {
  return reference.version === undefined
    ? ""
    : ` (no secret there, or it has no version ${reference.version})`;
}

function kvHint(reference: VaultReference, mount: Mount): string {
  if (mount.kvVersion === 2) {
    return `the mount ${mount.path} is KV version 2; check the secret's name (vault kv list ${mount.path})`;
  }
  const rest = reference.path.slice(mount.path.length);
  if (mount.path !== "" && rest.startsWith("data/")) {
    return `the mount ${mount.path} is KV version 1, where data/ is not part of the path; did you mean ${mount.path}${rest.slice("data/".length)}?`;
  }
  const kind =
    mount.type === ""
      ? ""
      : ` (the mount ${mount.path} is ${mountKind(mount)})`;
  return `check the path${kind}`;
}

function mountKind(mount: Mount): string {
  return mount.type === "kv" || mount.type === "generic"
    ? "KV version 1"
    : `a ${mount.type} secrets engine`;
}

function withoutQuery(apiPath: string): string {
  const question = apiPath.indexOf("?");
  return question === -1 ? apiPath : apiPath.slice(0, question);
}
