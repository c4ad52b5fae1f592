/**
 * The Vault provider's settings, read from the environment: the Vault CLI's
 * own variables for the connection, and `SECRET_ENTRYPOINT_VAULT_*` for what
 * the CLI has no variable for (how to log in). Every value is checked here,
 * before any network call.
 */
import { EntrypointError, ExitCode } from "../../src/errors.ts";
import { vaultSettingNames } from "../setting-names.ts";

export const authMethods = ["token", "kubernetes", "approle", "jwt"] as const;

export type AuthMethod = (typeof authMethods)[number];

/** Where a credential comes from: a variable's value or a file's content. */
export type Credential =
  | { from: "variable"; name: string; value: string }
  | { from: "file"; name: string; path: string };

/** How to get a token. Files are read at login, not here. */
export type AuthSettings =
  | { method: "token"; token?: Credential }
  | { method: "kubernetes"; mount: string; role: string; jwtFile: string }
  | {
      method: "approle";
      mount: string;
      roleId: Credential;
      secretId?: Credential;
    }
  | { method: "jwt"; mount: string; role?: string; jwtFile: string };

/** What the provider needs to talk to Vault. */
export interface VaultSettings {
  address: URL;
  namespace?: string;
  tls: TlsSettings;
  auth: AuthSettings;
  /** Per-request timeout (VAULT_CLIENT_TIMEOUT), within the run's deadline. */
  requestTimeoutMs: number;
  /** Retries after the first attempt of a read (VAULT_MAX_RETRIES). */
  maxRetries: number;
  /** How long a login keeps retrying while Vault is unavailable. */
  loginWaitMs: number;
  /** Reads in flight at once. */
  concurrency: number;
  /** Revoke a token obtained by login once the reads are done. */
  revoke: boolean;
}

/** The TLS files named by the Vault CLI's variables (read later). */
export interface TlsSettings {
  caCert?: string;
  caPath?: string;
  clientCert?: string;
  clientKey?: string;
  serverName?: string;
  skipVerify: boolean;
}

type Env = NodeJS.ProcessEnv;

const prefix = "SECRET_ENTRYPOINT_VAULT_";

/** Every SECRET_ENTRYPOINT_VAULT_* setting, for catching typos. */
export const settingNames = vaultSettingNames;

/**
 * SECRET_ENTRYPOINT_VAULT_* variables that are no setting: the core leaves
 * this prefix to the provider, and a misspelt name would otherwise be
 * ignored without a word.
 */
export function unknownSettings(env: Env): string[] {
  return Object.keys(env).filter(
    (name) => name.startsWith(prefix) && !settingNames.includes(name),
  );
}

// Where Kubernetes mounts the pod's service account token.
export const defaultKubernetesTokenFile =
  "/var/run/secrets/kubernetes.io/serviceaccount/token";

/**
 * Reads and checks every setting. Throws exit 78 when VAULT_ADDR is missing,
 * a required setting of the chosen auth method is absent, or a value has the
 * wrong form: these are configuration, not command-line options (exit 64),
 * per DESIGN section 6.
 */
export function readSettings(env: Env): VaultSettings {
  return {
    address: readAddress(env),
    ...optional("namespace", readNamespace(env)),
    tls: readTls(env),
    auth: readAuth(env),
    requestTimeoutMs: duration(env, "VAULT_CLIENT_TIMEOUT", 60_000),
    maxRetries: integer(env, "VAULT_MAX_RETRIES", { min: 0, max: 10, dflt: 2 }),
    loginWaitMs: duration(env, `${prefix}LOGIN_WAIT`, 30_000),
    concurrency: integer(env, `${prefix}CONCURRENCY`, {
      min: 1,
      max: 64,
      dflt: 8,
    }),
    revoke: boolean(env, `${prefix}REVOKE`, true),
  };
}

function readAddress(env: Env): URL {
  const raw = nonEmpty(env, "VAULT_ADDR");
  if (raw === undefined) {
    throw new EntrypointError(
      "VAULT_ADDR is not set; set it to the Vault server's address, e.g. VAULT_ADDR=https://vault.example.com:8200",
      ExitCode.config,
    );
  }

  let address: URL | undefined;
  try {
    address = new URL(raw);
  } catch {
    address = undefined;
  }
  if (
    address === undefined ||
    !["http:", "https:"].includes(address.protocol) ||
    address.search !== "" ||
    address.hash !== ""
  ) {
    throw configError(
      `VAULT_ADDR=${withoutUserinfo(raw)} is not a Vault address; use http:// or https://, a host and an optional port, without query or fragment, e.g. https://vault.example.com:8200`,
    );
  }
  return address;
}

// An address may carry user:password@; the message shows the rest.
function withoutUserinfo(raw: string): string {
  return raw.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, "$1***@");
}

// Sent as the X-Vault-Namespace header of every request: Node refuses a
// header value with a control character or a character above U+00FF
// (ERR_INVALID_CHAR), which would otherwise pass for a network error.
function readNamespace(env: Env): string | undefined {
  const raw = nonEmpty(env, "VAULT_NAMESPACE");
  const bad = raw === undefined ? undefined : firstOutside(raw, /[\x20-\x7e]/);
  if (bad !== undefined) {
    throw configError(
      `VAULT_NAMESPACE=${JSON.stringify(raw)} holds a character an HTTP header cannot carry (${bad}); use the namespace path in printable ASCII, e.g. admin/team-a`,
    );
  }
  return raw;
}

/**
 * The first character of `value` that `allowed` does not match, as its code
 * point and position ("U+000A at character 9"), or undefined. Names the
 * character without showing the value, which may be a credential.
 */
export function firstOutside(
  value: string,
  allowed: RegExp,
): string | undefined {
  const characters = [...value];
  const index = characters.findIndex((character) => !allowed.test(character));
  if (index === -1) return undefined;

  const code = characters[index]!.codePointAt(0)!;
  const hex = code.toString(16).toUpperCase().padStart(4, "0");
  return `U+${hex} at character ${index + 1}`;
}

/** A setting that is missing or has the wrong form (exit 78). */
export function configError(message: string): EntrypointError {
  return new EntrypointError(message, ExitCode.config);
}

function readTls(env: Env): TlsSettings {
  const clientCert = nonEmpty(env, "VAULT_CLIENT_CERT");
  const clientKey = nonEmpty(env, "VAULT_CLIENT_KEY");
  if ((clientCert === undefined) !== (clientKey === undefined)) {
    throw new EntrypointError(
      "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY go together: set both to use a client certificate, or neither",
      ExitCode.config,
    );
  }
  return {
    ...optional("caCert", nonEmpty(env, "VAULT_CACERT")),
    ...optional("caPath", nonEmpty(env, "VAULT_CAPATH")),
    ...optional("clientCert", clientCert),
    ...optional("clientKey", clientKey),
    ...optional("serverName", nonEmpty(env, "VAULT_TLS_SERVER_NAME")),
    skipVerify: goBoolean(env, "VAULT_SKIP_VERIFY"),
  };
}

function readAuth(env: Env): AuthSettings {
  const method = nonEmpty(env, `${prefix}AUTH`) ?? "token";
  if (!isAuthMethod(method)) {
    throw configError(
      `${prefix}AUTH=${method} is not an auth method; use one of ${authMethods.join(", ")}`,
    );
  }
  const mount = authMount(env, method);
  switch (method) {
    case "token":
      return { method, ...optional("token", tokenCredential(env)) };
    case "kubernetes":
      return {
        method,
        mount,
        role: required(env, `${prefix}ROLE`, method),
        jwtFile:
          nonEmpty(env, `${prefix}KUBERNETES_TOKEN_FILE`) ??
          defaultKubernetesTokenFile,
      };
    case "approle":
      return approleSettings(env, mount);
    case "jwt":
      return {
        method,
        mount,
        ...optional("role", nonEmpty(env, `${prefix}ROLE`)),
        jwtFile: required(env, `${prefix}JWT_FILE`, method),
      };
  }
}

function isAuthMethod(raw: string): raw is AuthMethod {
  return (authMethods as readonly string[]).includes(raw);
}

// Vault mounts each auth method at its type's name unless told otherwise;
// `vault auth enable -path=k8s-prod kubernetes` is common with many clusters.
function authMount(env: Env, method: AuthMethod): string {
  const raw = nonEmpty(env, `${prefix}AUTH_PATH`);
  if (raw === undefined) return method;

  const mount = raw.replace(/^\/+|\/+$/g, "").replace(/^auth\//, "");
  if (mount === "" || !/^[A-Za-z0-9_.\-/]+$/.test(mount)) {
    throw configError(
      `${prefix}AUTH_PATH=${raw} is not an auth mount path; give the path the method is enabled at, e.g. kubernetes or k8s-prod`,
    );
  }
  return mount;
}

// VAULT_TOKEN first, as the Vault CLI; then our token file. Without either,
// the login falls back to ~/.vault-token at read time.
function tokenCredential(env: Env): Credential | undefined {
  return oneCredential(env, "VAULT_TOKEN", `${prefix}TOKEN_FILE`);
}

function approleSettings(env: Env, mount: string): AuthSettings {
  const roleId = oneCredential(
    env,
    `${prefix}ROLE_ID`,
    `${prefix}ROLE_ID_FILE`,
  );
  if (roleId === undefined) {
    throw new EntrypointError(
      `approle auth needs a role id: set ${prefix}ROLE_ID or ${prefix}ROLE_ID_FILE`,
      ExitCode.config,
    );
  }
  // A role with bind_secret_id=false logs in with the role id alone.
  const secretId = oneCredential(
    env,
    `${prefix}SECRET_ID`,
    `${prefix}SECRET_ID_FILE`,
  );
  return {
    method: "approle",
    mount,
    roleId,
    ...optional("secretId", secretId),
  };
}

function oneCredential(
  env: Env,
  variable: string,
  fileVariable: string,
): Credential | undefined {
  const value = nonEmpty(env, variable);
  const file = nonEmpty(env, fileVariable);
  if (value !== undefined && file !== undefined) {
    throw configError(
      `${variable} and ${fileVariable} are both set; set only one of them`,
    );
  }
  if (value !== undefined) return { from: "variable", name: variable, value };
  if (file !== undefined)
    return { from: "file", name: fileVariable, path: file };
  return undefined;
}

function required(env: Env, name: string, method: AuthMethod): string {
  const value = nonEmpty(env, name);
  if (value === undefined) {
    throw new EntrypointError(
      `${method} auth needs ${name}; set it (${prefix}AUTH=${method})`,
      ExitCode.config,
    );
  }
  return value;
}

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

function optional<K extends string, V>(
  key: K,
  value: V | undefined,
): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/**
 * A duration: `500ms`, `30s`, `2m`, or bare seconds as the Vault CLI takes
 * VAULT_CLIENT_TIMEOUT.
 */
export function duration(env: Env, name: string, dflt: number): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return dflt;

  const match = /^(\d{1,9})(ms|s|m)?$/.exec(raw);
  const unit = { ms: 1, s: 1000, m: 60_000 }[match?.[2] ?? "s"] ?? 1000;
  const value = match === null ? 0 : Number(match[1]) * unit;
  if (value <= 0) {
    throw configError(
      `${name}=${raw} is not a duration; use e.g. 500ms, 30s, 2m or a number of seconds`,
    );
  }
  return value;
}

function integer(
  env: Env,
  name: string,
  range: { min: number; max: number; dflt: number },
): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return range.dflt;

  const value = /^\d{1,3}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(value >= range.min && value <= range.max)) {
    throw configError(
      `${name}=${raw} is not a whole number from ${range.min} to ${range.max}`,
    );
  }
  return value;
}

function boolean(env: Env, name: string, dflt: boolean): boolean {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return dflt;
  if (raw === "true" || raw === "false") return raw === "true";

  throw configError(`${name}=${raw} is not a boolean; use true or false`);
}

// VAULT_SKIP_VERIFY takes what Go's strconv.ParseBool takes, as in the CLI.
function goBoolean(env: Env, name: string): boolean {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return false;
  if (["1", "t", "T", "TRUE", "true", "True"].includes(raw)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(raw)) return false;

  throw configError(
    `${name}=${raw} is not a boolean; use true or false (or 1, 0, t, f)`,
  );
}
