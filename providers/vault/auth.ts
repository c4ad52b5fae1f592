/**
 * Getting a Vault token: given (VAULT_TOKEN, a token file, ~/.vault-token)
 * or by a login to the kubernetes, approle or jwt auth method. A login is
 * retried while Vault is unavailable, for at most the login wait; a denial
 * is final at once, since retrying cannot change the credential.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";

import { EntrypointError, ExitCode } from "../../src/errors.ts";
import { VaultRequestError } from "./http.ts";
import type { VaultHttp } from "./http.ts";
import { configError, firstOutside } from "./settings.ts";
import type { AuthSettings, Credential, VaultSettings } from "./settings.ts";
import { otherStatusError, transportError } from "./errors.ts";

/** The token the reads use, and whether this run created it. */
export interface Session {
  token: string;
  loggedIn: boolean;
}

/** What a login needs from the run. */
export interface AuthContext {
  settings: VaultSettings;
  http: VaultHttp;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  deadline: number;
}

/** Finds or obtains the token; throws exit 78, 77 or 69. */
export async function authenticate(context: AuthContext): Promise<Session> {
  const auth = context.settings.auth;
  if (auth.method === "token") {
    return {
      token: await givenToken(auth.token, context.env),
      loggedIn: false,
    };
  }
  const body = await loginBody(auth);
  // The JWT, role id and secret id, not the role's name: known from the
  // login on, for every message after it.
  const { jwt, role_id: roleId, secret_id: secretId } = body;
  context.http.addCredentials([jwt, roleId, secretId]);
  return { token: await login(auth, body, context), loggedIn: true };
}

async function givenToken(
  credential: Credential | undefined,
  env: NodeJS.ProcessEnv,
): Promise<string> {
  if (credential !== undefined) return readCredential(credential, "token");

  // The Vault CLI's token helper keeps the token of `vault login` here.
  const home = env["HOME"] || os.homedir();
  const helperFile = path.join(home, ".vault-token");
  const token = await readOptionalFile(helperFile);
  if (token !== undefined && token !== "") {
    return checked(
      token,
      "token",
      `${helperFile} (the Vault CLI's token file)`,
      helperFile,
    );
  }

  throw new EntrypointError(
    `no Vault token: set VAULT_TOKEN or SECRET_ENTRYPOINT_VAULT_TOKEN_FILE, run vault login (${helperFile}), or log in with SECRET_ENTRYPOINT_VAULT_AUTH=kubernetes, approle or jwt`,
    ExitCode.config,
  );
}

type LoginSettings = Exclude<AuthSettings, { method: "token" }>;

/** What a login sends: the role's name and the credentials. */
type LoginBody = {
  role?: string;
  jwt?: string;
  role_id?: string;
  secret_id?: string;
};

async function loginBody(auth: LoginSettings): Promise<LoginBody> {
  switch (auth.method) {
    case "kubernetes":
      return {
        role: auth.role,
        jwt: await readFileSetting(
          auth.jwtFile,
          "SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE",
          "jwt",
        ),
      };
    case "jwt":
      return {
        ...(auth.role === undefined ? {} : { role: auth.role }),
        jwt: await readFileSetting(
          auth.jwtFile,
          "SECRET_ENTRYPOINT_VAULT_JWT_FILE",
          "jwt",
        ),
      };
    case "approle":
      return {
        role_id: await readCredential(auth.roleId, "roleId"),
        ...(auth.secretId === undefined
          ? {}
          : { secret_id: await readCredential(auth.secretId, "secretId") }),
      };
  }
}

async function login(
  auth: LoginSettings,
  body: LoginBody,
  context: AuthContext,
): Promise<string> {
  const subject = loginSubject(auth);
  const wait = context.settings.loginWaitMs;
  let answer: unknown;
  try {
    answer = await context.http.send(
      { method: "POST", path: `auth/${auth.mount}/login`, body },
      {
        signal: context.signal,
        deadline: Math.min(context.deadline, Date.now() + wait),
        retries: Infinity,
      },
    );
  } catch (error) {
    throw loginError(subject, auth, error, context);
  }
  const token = (answer as { auth?: { client_token?: unknown } } | null)?.auth
    ?.client_token;
  if (typeof token !== "string" || token === "") {
    throw new EntrypointError(
      `${subject}: Vault's answer holds no client token`,
      ExitCode.unavailable,
    );
  }
  return token;
}

function loginSubject(auth: LoginSettings): string {
  const role =
    auth.method === "approle" || auth.role === undefined
      ? ""
      : ` role ${auth.role}`;
  return `vault login with ${auth.method} auth${role} at auth/${auth.mount}`;
}

function loginError(
  subject: string,
  auth: LoginSettings,
  error: unknown,
  context: AuthContext,
): EntrypointError {
  if (!(error instanceof VaultRequestError)) throw error;

  const where = { address: context.settings.address.origin };
  const transport = transportError(subject, error, where);
  if (transport !== undefined) return transport;

  const denied = otherStatusError(subject, error);
  return new EntrypointError(
    `${denied.message}; ${loginHint(auth)}`,
    ExitCode.denied,
  );
}

function loginHint(auth: LoginSettings): string {
  switch (auth.method) {
    case "kubernetes":
      return `check that the role exists at auth/${auth.mount} and binds this pod's service account and namespace`;
    case "jwt":
      return `check that the role exists at auth/${auth.mount} and that its bound audience and claims match the token in ${auth.jwtFile}`;
    case "approle":
      return `check the role id and secret id of the role at auth/${auth.mount} (a secret id may have expired or run out of uses)`;
  }
}

/** What a credential is, for its rule and for messages. */
type CredentialKind = keyof typeof credentialRules;

// What each credential may hold. The token goes into the X-Vault-Token
// header, where Node refuses control characters and anything above U+00FF
// (ERR_INVALID_CHAR, which would pass for a network error and be retried);
// Vault's tokens and JWTs (RFC 7519: base64url and dots) are printable
// ASCII anyway. Role and secret ids go into a JSON body, which carries any
// character, and may be custom strings: only a control character, the sign
// of a pasted line break or of the wrong file, is refused.
const credentialRules = {
  token: {
    noun: "a Vault token",
    short: "token",
    allowed: /[\x21-\x7e]/,
    form: "printable ASCII without spaces",
  },
  jwt: {
    noun: "a JWT",
    short: "JWT",
    allowed: /[\x21-\x7e]/,
    form: "printable ASCII without spaces",
  },
  roleId: {
    noun: "a role id",
    short: "role id",
    allowed: /[^\p{Cc}]/u,
    form: "one line without control characters",
  },
  secretId: {
    noun: "a secret id",
    short: "secret id",
    allowed: /[^\p{Cc}]/u,
    form: "one line without control characters",
  },
} as const;

async function readCredential(
  credential: Credential,
  kind: CredentialKind,
): Promise<string> {
  if (credential.from === "file") {
    return readFileSetting(credential.path, credential.name, kind);
  }
  return checked(credential.value.trim(), kind, credential.name);
}

async function readFileSetting(
  file: string,
  variable: string,
  kind: CredentialKind,
) {
  let content: string;
  try {
    content = await fs.readFile(file, "utf8");
  } catch (error) {
    throw new EntrypointError(
      `cannot read ${file} (${variable}): ${(error as NodeJS.ErrnoException).code ?? "read error"}`,
      ExitCode.config,
    );
  }
  // Tools write these files with a final newline; Vault wants none.
  const value = content.trim();
  if (value === "") {
    throw new EntrypointError(
      `${file} (${variable}) is empty`,
      ExitCode.config,
    );
  }
  return checked(value, kind, `${file} (${variable})`, file);
}

/**
 * Returns `value` if it may be sent as a `kind`; throws exit 78 otherwise,
 * before any request. `where` names the variable (and the file, if `value`
 * was read from `file`); the message shows the offending character, never
 * the value.
 */
function checked(
  value: string,
  kind: CredentialKind,
  where: string,
  file?: string,
): string {
  const rule = credentialRules[kind];
  const bad = firstOutside(value, rule.allowed);
  if (bad === undefined) return value;

  const fix =
    file === undefined
      ? `set ${where} to the ${rule.short} alone`
      : `${file} should hold the ${rule.short} alone, a final newline allowed`;
  throw configError(
    `${where} holds a character ${rule.noun} cannot have (${bad}); ${rule.noun} is ${rule.form}: ${fix}`,
  );
}

async function readOptionalFile(file: string) {
  try {
    return (await fs.readFile(file, "utf8")).trim();
  } catch {
    return undefined;
  }
}

// The revoke runs after the reads, when the run's deadline may have passed;
// it gets a few seconds of its own so that a slow Vault cannot hold the
// command back for long.
const revokeBudgetMs = 5000;

/**
 * Revokes a token this run created. Failure is logged by the caller, not
 * fatal: the token expires at the end of its TTL.
 */
export async function revokeToken(http: VaultHttp): Promise<void> {
  await http.send(
    { method: "POST", path: "auth/token/revoke-self" },
    {
      signal: AbortSignal.timeout(revokeBudgetMs),
      deadline: Date.now() + revokeBudgetMs,
      retries: 1,
    },
  );
}
