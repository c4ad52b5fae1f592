/**
 * The Vault provider: `vault:PATH` references, read from HashiCorp Vault
 * with node-vault. Settings are the Vault CLI's variables (VAULT_ADDR,
 * VAULT_TOKEN, VAULT_CACERT...) plus SECRET_ENTRYPOINT_VAULT_* for the login;
 * docs/vault.md describes them all.
 *
 * A run checks its settings, reads the TLS files, gets a token, then reads
 * each distinct secret once, a few at a time. `close` revokes a token the run
 * obtained by login, unless a leased secret (a database credential) would be
 * revoked with it.
 */
import pLimit from "p-limit";
import type { Logger } from "pino";

import { EntrypointError } from "../src/errors.ts";
import type { VaultReference } from "../src/references.ts";
import type {
  CreateProvider,
  Provider,
  ReadContext,
  ReadResult,
  SecretRequest,
} from "./types.ts";
import { authenticate, revokeToken } from "./vault/auth.ts";
import type { Session } from "./vault/auth.ts";
import { VaultHttp } from "./vault/http.ts";
import { MountCache, readSecret } from "./vault/read.ts";
import type { ReadDeps } from "./vault/read.ts";
import { readSettings, unknownSettings } from "./vault/settings.ts";
import type { VaultSettings } from "./vault/settings.ts";
import { readTlsMaterial } from "./vault/tls.ts";

interface Connection {
  settings: VaultSettings;
  http: VaultHttp;
  session: Session;
  /** Some secret read holds a lease that ends with the token. */
  leased: boolean;
}

/** Creates the Vault provider; nothing is checked until the first read. */
export const create: CreateProvider = (setup) => {
  let connection: Connection | undefined;
  const provider: Provider = {
    name: "vault",
    async read(requests, context) {
      connection ??= await connect(setup.env, context);
      return readAll(requests, connection, context);
    },
    async close(context) {
      if (connection === undefined) return;

      const closing = connection;
      connection = undefined;
      await release(closing, context);
    },
  };
  return provider;
};

async function connect(
  env: NodeJS.ProcessEnv,
  context: ReadContext,
): Promise<Connection> {
  const settings = readSettings(env);
  warnAboutSettings(env, settings, context.logger);
  const http = new VaultHttp(settings, await readTlsMaterial(settings.tls));
  // Known even when another auth method is chosen: a server that echoes
  // headers or the environment must not get it into a message.
  const envToken = env["VAULT_TOKEN"];
  http.addCredentials([envToken, envToken?.trim()]);
  try {
    const session = await authenticate({ settings, http, env, ...context });
    http.token = session.token;
    logSession(settings, session, context.logger);
    return { settings, http, session, leased: false };
  } catch (error) {
    http.destroy();
    throw error;
  }
}

function warnAboutSettings(
  env: NodeJS.ProcessEnv,
  settings: VaultSettings,
  logger: Logger,
) {
  for (const name of unknownSettings(env)) {
    logger.warn(
      { event: "options.unknown", variable: name },
      `${name} is not a setting of the vault provider and is ignored; see docs/vault.md for the valid ones`,
    );
  }
  const address = settings.address;
  if (settings.tls.skipVerify) {
    logger.warn(
      { event: "vault.tls", address: address.origin },
      "VAULT_SKIP_VERIFY is set: Vault's certificate is not checked, so anyone on the network path can read the token and the secrets",
    );
  }
  if (address.protocol === "http:" && !isLoopback(address.hostname)) {
    logger.warn(
      { event: "vault.tls", address: address.origin },
      "VAULT_ADDR is plain http:// to another host: the token and the secrets cross the network unencrypted; use https://",
    );
  }
}

function isLoopback(hostname: string): boolean {
  return (
    hostname === "localhost" ||
    hostname === "[::1]" ||
    /^127\.\d+\.\d+\.\d+$/.test(hostname)
  );
}

function logSession(settings: VaultSettings, session: Session, logger: Logger) {
  const auth = settings.auth;
  logger.debug(
    {
      event: "vault.login",
      address: settings.address.origin,
      method: auth.method,
      ...(auth.method === "token" ? {} : { mount: `auth/${auth.mount}` }),
      ...(settings.namespace === undefined
        ? {}
        : { namespace: settings.namespace }),
      loggedIn: session.loggedIn,
    },
    session.loggedIn ? "logged in to Vault" : "using the given Vault token",
  );
}

async function readAll(
  requests: readonly SecretRequest[],
  connection: Connection,
  context: ReadContext,
): Promise<Map<string, ReadResult>> {
  const deps = readDeps(connection, context);
  const mounts = new MountCache();
  const limit = pLimit(connection.settings.concurrency);
  const results = await Promise.all(
    requests.map((request) =>
      limit(() => readOne(request.reference as VaultReference, mounts, deps)),
    ),
  );
  if (results.some((result) => result.ok && result.secret.lease)) {
    connection.leased = true;
  }
  return new Map(
    requests.map((request, index) => [request.identity, results[index]!]),
  );
}

async function readOne(
  reference: VaultReference,
  mounts: MountCache,
  deps: ReadDeps,
): Promise<ReadResult> {
  try {
    return { ok: true, secret: await readSecret(reference, mounts, deps) };
  } catch (error) {
    if (error instanceof EntrypointError) return { ok: false, error };
    throw error;
  }
}

function readDeps(connection: Connection, context: ReadContext): ReadDeps {
  const policy = {
    signal: context.signal,
    deadline: context.deadline,
    retries: connection.settings.maxRetries,
  };
  let lookup: Promise<boolean> | undefined;
  return {
    http: connection.http,
    address: connection.settings.address.origin,
    policy,
    // Asked once, only after a 403: an expired token and a policy that
    // lacks the path both answer 403, and the fix differs.
    tokenInvalid: () => {
      lookup ??= connection.http
        .send({ method: "GET", path: "auth/token/lookup-self" }, policy)
        .then(
          () => false,
          (error: unknown) =>
            (error as { failure?: { status?: number } }).failure?.status ===
            403,
        );
      return lookup;
    },
  };
}

async function release(connection: Connection, context: ReadContext) {
  const { settings, session, http } = connection;
  try {
    if (!session.loggedIn) return;
    if (connection.leased || !settings.revoke) {
      context.logger.debug(
        {
          event: "vault.token.keep",
          reason: connection.leased ? "lease" : "setting",
        },
        connection.leased
          ? "kept the Vault token: a leased secret would be revoked with it"
          : "kept the Vault token: SECRET_ENTRYPOINT_VAULT_REVOKE=false",
      );
      return;
    }
    await revokeToken(http).catch((error: unknown) =>
      context.logger.warn(
        { event: "vault.token.revoke", reason: (error as Error).message },
        "could not revoke the Vault token of this run; it expires at the end of its TTL",
      ),
    );
  } finally {
    http.destroy();
  }
}
