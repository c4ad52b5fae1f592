/**
 * The Vault provider called directly against the fake Vault: fast checks of
 * every auth method, KV layouts, leases, faults and TLS. The end-to-end
 * file runs the same kinds of cases through the built bundle.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, test } from "vitest";

import { create } from "../providers/vault.ts";
import { tlsHint } from "../providers/vault/errors.ts";
import type { ReadResult, SecretRequest } from "../providers/types.ts";
import { EntrypointError } from "../src/errors.ts";
import { parseReference, secretIdentity } from "../src/references.ts";
import { FakeVault, type FakeVaultOptions } from "./servers/vault.ts";
import { useTlsVaults } from "./support/tls.ts";

const rootToken = "hvs.root-token-for-tests";
const appToken = "hvs.app-token-for-tests";
const saJwt = "eyJhbGciOiJSUzI1NiJ9.service-account.signature";
const oidcJwt = "eyJhbGciOiJSUzI1NiJ9.oidc-token.signature";
const roleId = "8d1a2b3c-role-id";
const secretId = "f00dfeed-secret-id";
const dbPassword = "s3cret-db-password";

let vault: FakeVault;
let scratch: string;

/** A fake Vault holding what most tests read. */
async function startVault(options: FakeVaultOptions = {}): Promise<FakeVault> {
  const server = await FakeVault.start(options);
  server.addToken(rootToken, ["root"]);
  server.addPolicy("app", ["secret/data/app", "kv/*", "database/creds/ro"]);
  server.addToken(appToken, ["app"]);
  server.mountKv("secret", 2);
  server.mountKv("kv", 1, { plainOptions: true });
  server.mountKv("legacy", 1);
  server.mountDatabase("database", ["ro"]);
  server.writeKv("secret", "app", { password: "first-password" });
  server.writeKv("secret", "app", { password: dbPassword, user: "app" });
  server.writeKv("kv", "app", { api_key: "kv1-api-key" });
  server.addKubernetesRole("app", saJwt, ["app"]);
  server.addAppRole(roleId, secretId, ["app"]);
  server.addJwtRole("ci", oidcJwt, ["app"]);
  return server;
}

beforeAll(async () => {
  vault = await startVault();
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), "vault-provider-"));
});

afterAll(async () => {
  await vault.close();
  fs.rmSync(scratch, { recursive: true, force: true });
});

afterEach(() => {
  vault.clearFaults();
  vault.latencyMs = 0;
  vault.requests.splice(0);
});

interface Run {
  results: Map<string, ReadResult>;
  logs: string;
  identities: string[];
}

/** Reads `references` with a fresh provider, then closes it. */
async function read(
  env: Record<string, string>,
  references: string[],
  timeoutMs = 10_000,
): Promise<Run> {
  const lines: string[] = [];
  const logger = pino(
    { level: "debug" },
    { write: (line: string) => lines.push(line) },
  );
  const provider = create({ env, logger, fileRoots: [], fileTrim: true });
  const requests = new Map<string, SecretRequest>();
  for (const text of references) {
    const reference = parseReference(text, { fileRoots: [] })!;
    requests.set(secretIdentity(reference), {
      identity: secretIdentity(reference),
      reference,
    });
  }
  const context = {
    signal: AbortSignal.timeout(timeoutMs),
    deadline: Date.now() + timeoutMs,
    logger,
  };
  try {
    const results = await provider.read([...requests.values()], context);
    return { results, logs: lines.join(""), identities: [...requests.keys()] };
  } finally {
    await provider.close?.(context);
  }
}

/** The data of the secret at `identity`, or the error's code and message. */
function outcome(run: Run, identity: string) {
  const result = run.results.get(identity);
  if (result === undefined) throw new Error(`no result for ${identity}`);
  return result.ok
    ? { data: (result.secret as { data: unknown }).data }
    : { code: result.error.exitCode, message: result.error.message };
}

/** The error `read` threw. */
async function failure(promise: Promise<unknown>) {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (!(error instanceof EntrypointError)) {
    throw new Error(`expected an EntrypointError, got ${String(error)}`);
  }
  return { code: error.exitCode, message: error.message };
}

function tokenEnv(extra: Record<string, string> = {}) {
  return { VAULT_ADDR: vault.address, VAULT_TOKEN: appToken, ...extra };
}

function write(name: string, content: string): string {
  const file = path.join(scratch, name);
  fs.writeFileSync(file, content);
  return file;
}

describe("KV reads", () => {
  test("KV v2 with and without data/ give the latest version", async () => {
    const run = await read(tokenEnv(), [
      "vault:secret/app#password",
      "vault:secret/data/app#user",
    ]);

    const latest = { data: { password: dbPassword, user: "app" } };
    expect(outcome(run, "vault:secret/app@latest")).toEqual(latest);
    expect(outcome(run, "vault:secret/data/app@latest")).toEqual(latest);
    expect(vault.count("secret/data/app", "GET")).toBe(2);
    // Both paths lie under one mount: one preflight serves them.
    expect(
      vault.requests.filter((r) => r.path.startsWith("sys/internal/ui/mounts/"))
        .length,
    ).toBe(1);
  });

  test("a version is read with ?version=", async () => {
    const run = await read(tokenEnv(), ["vault:secret/app?version=1#password"]);

    expect(outcome(run, "vault:secret/app@1")).toEqual({
      data: { password: "first-password" },
    });
    expect(vault.requests.at(-1)).toMatchObject({
      path: "secret/data/app",
      query: "?version=1",
    });
  });

  test("KV v1, whose mount has no options, is read as written", async () => {
    const run = await read(tokenEnv(), ["vault:kv/app"]);

    expect(outcome(run, "vault:kv/app@latest")).toEqual({
      data: { api_key: "kv1-api-key" },
    });
    expect(vault.count("kv/app")).toBe(1);
  });

  test("a deleted and a destroyed version say so, exit 66", async () => {
    const server = await startVault();
    server.writeKv("secret", "gone", { a: "1" });
    server.writeKv("secret", "gone", { a: "2" });
    server.deleteKvVersion("secret", "gone", 2);
    server.destroyKvVersion("secret", "gone", 1);
    const env = { VAULT_ADDR: server.address, VAULT_TOKEN: rootToken };
    try {
      const run = await read(env, [
        "vault:secret/gone",
        "vault:secret/gone?version=1",
      ]);

      const latest = outcome(run, "vault:secret/gone@latest");
      expect(latest.code).toBe(66);
      expect(latest.message).toMatch(
        /^vault secret secret\/gone: the latest version \(2\) was deleted at \d{4}-\d\d-\d\dT[\d:.]+Z; restore it with vault kv undelete -versions=2 secret\/gone, or read another with \?version=$/,
      );
      expect(outcome(run, "vault:secret/gone@1")).toEqual({
        code: 66,
        message:
          "vault secret secret/gone: version 1 was destroyed and can no longer be read; write a new version or read another with ?version=",
      });
    } finally {
      await server.close();
    }
  });

  test("a missing path says which KV version the mount is", async () => {
    const env = { VAULT_ADDR: vault.address, VAULT_TOKEN: rootToken };
    const run = await read(env, [
      "vault:secret/nothing",
      "vault:secret/app?version=9",
      "vault:kv/data/app",
    ]);

    expect(outcome(run, "vault:secret/nothing@latest")).toEqual({
      code: 66,
      message:
        "vault secret secret/nothing: not found (404) at secret/data/nothing; the mount secret/ is KV version 2; check the secret's name (vault kv list secret/)",
    });
    expect(outcome(run, "vault:secret/app@9")).toEqual({
      code: 66,
      message:
        "vault secret secret/app: not found (404) at secret/data/app (no secret there, or it has no version 9); the mount secret/ is KV version 2; check the secret's name (vault kv list secret/)",
    });
    expect(outcome(run, "vault:kv/data/app@latest")).toEqual({
      code: 66,
      message:
        "vault secret kv/data/app: not found (404) at kv/data/app; the mount kv/ is KV version 1, where data/ is not part of the path; did you mean kv/app?",
    });
  });

  test("a version on KV v1 is a malformed request, exit 65", async () => {
    const run = await read(tokenEnv(), ["vault:kv/app?version=2"]);

    expect(outcome(run, "vault:kv/app@2")).toEqual({
      code: 65,
      message:
        "vault secret kv/app: version 2 was asked, but the mount kv/ is KV version 1, which keeps no versions; remove ?version=",
    });
  });

  test("reads run in parallel and each path is read once", async () => {
    const server = await startVault();
    for (let index = 0; index < 12; index += 1) {
      server.writeKv("secret", `svc${index}`, { key: `value-${index}` });
    }
    server.latencyMs = 100;
    const env = { VAULT_ADDR: server.address, VAULT_TOKEN: rootToken };
    const references = Array.from(
      { length: 12 },
      (_, index) => `vault:secret/svc${index}#key`,
    );
    try {
      const started = Date.now();
      const run = await read(env, references);
      const elapsed = Date.now() - started;

      for (let index = 0; index < 12; index += 1) {
        expect(outcome(run, `vault:secret/svc${index}@latest`)).toEqual({
          data: { key: `value-${index}` },
        });
        expect(server.count(`secret/data/svc${index}`)).toBe(1);
      }
      // One preflight, then 12 reads 8 at a time: 3 rounds of 100 ms, where
      // one read after another would take 1.3 s.
      expect(elapsed).toBeLessThan(900);
    } finally {
      await server.close();
    }
  });
});

describe("permissions", () => {
  test("a path outside the policy is exit 77 with a hint", async () => {
    vault.writeKv("secret", "other", { x: "y" });
    const run = await read(tokenEnv(), ["vault:secret/other"]);

    expect(outcome(run, "vault:secret/other@latest")).toEqual({
      code: 77,
      message:
        "vault secret secret/other: permission denied (403); check that the policy of the token allows read on secret/data/other",
    });
  });

  test("a path under no mount is exit 77 from the preflight", async () => {
    const run = await read(tokenEnv(), ["vault:nomount/app"]);

    expect(outcome(run, "vault:nomount/app@latest")).toEqual({
      code: 77,
      message:
        "vault secret nomount/app: permission denied (403) finding its mount; check that the path starts with a mount (vault secrets list) and that the policy of the token allows read on it",
    });
  });

  test("an invalid token is told apart from a policy", async () => {
    const run = await read(tokenEnv({ VAULT_TOKEN: "hvs.revoked" }), [
      "vault:secret/app",
    ]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 77,
      message:
        "vault secret secret/app: permission denied (403); the Vault token is not valid (expired, revoked, or from another namespace than VAULT_NAMESPACE)",
    });
    expect(vault.count("auth/token/lookup-self")).toBe(1);
  });

  test("namespaces go in X-Vault-Namespace", async () => {
    const server = await FakeVault.start();
    server.addToken(rootToken, ["root"], "team-a");
    server.mountKv("secret", 2, { namespace: "team-a" });
    server.writeKv("secret", "app", { k: "in-team-a" }, "team-a");
    try {
      const env = {
        VAULT_ADDR: server.address,
        VAULT_TOKEN: rootToken,
        VAULT_NAMESPACE: "team-a",
      };
      const run = await read(env, ["vault:secret/app"]);

      expect(outcome(run, "vault:secret/app@latest")).toEqual({
        data: { k: "in-team-a" },
      });
      expect(server.requests.every((r) => r.namespace === "team-a")).toBe(true);

      const outside = await read(
        { VAULT_ADDR: server.address, VAULT_TOKEN: rootToken },
        ["vault:secret/app"],
      );
      expect(outcome(outside, "vault:secret/app@latest").code).toBe(77);
    } finally {
      await server.close();
    }
  });
});

describe("authentication", () => {
  test("a token file, and ~/.vault-token as the last resort", async () => {
    const tokenFile = write("token", `${appToken}\n`);
    const fromFile = await read(
      {
        VAULT_ADDR: vault.address,
        SECRET_ENTRYPOINT_VAULT_TOKEN_FILE: tokenFile,
      },
      ["vault:secret/app#password"],
    );
    expect(outcome(fromFile, "vault:secret/app@latest")).toHaveProperty(
      "data.password",
      dbPassword,
    );

    const home = fs.mkdtempSync(path.join(scratch, "home-"));
    fs.writeFileSync(path.join(home, ".vault-token"), appToken);
    const fromHome = await read({ VAULT_ADDR: vault.address, HOME: home }, [
      "vault:secret/app",
    ]);
    expect(outcome(fromHome, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );
    expect(vault.requests.every((r) => r.token === appToken)).toBe(true);
  });

  test("no token anywhere is exit 78", async () => {
    const home = fs.mkdtempSync(path.join(scratch, "empty-home-"));
    const error = await failure(
      read({ VAULT_ADDR: vault.address, HOME: home }, ["vault:secret/app"]),
    );

    expect(error).toEqual({
      code: 78,
      message: `no Vault token: set VAULT_TOKEN or SECRET_ENTRYPOINT_VAULT_TOKEN_FILE, run vault login (${home}/.vault-token), or log in with SECRET_ENTRYPOINT_VAULT_AUTH=kubernetes, approle or jwt`,
    });
  });

  test("kubernetes login, then the token is revoked", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
      SECRET_ENTRYPOINT_VAULT_ROLE: "app",
      SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write("sa", `${saJwt}\n`),
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.password",
      dbPassword,
    );
    expect(vault.requests[0]).toMatchObject({
      method: "POST",
      path: "auth/kubernetes/login",
      body: { role: "app", jwt: saJwt },
    });
    const login = vault.loginTokens().at(-1)!;
    expect(login).toMatchObject({ origin: "auth/kubernetes", revoked: true });
    expect(vault.requests.at(-1)).toMatchObject({
      path: "auth/token/revoke-self",
      token: login.token,
    });
    expect(run.logs).not.toContain(login.token);
    expect(run.logs).not.toContain(saJwt);
  });

  test("a leased secret keeps the login token alive", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
      SECRET_ENTRYPOINT_VAULT_ROLE: "app",
      SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write("sa", saJwt),
    };
    const run = await read(env, ["vault:database/creds/ro#username"]);

    const result = run.results.get("vault:database/creds/ro@latest")!;
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const lease = vault.leases.at(-1)!;
    expect(result.secret.lease).toEqual({
      id: lease.id,
      durationSeconds: 3600,
      renewable: true,
    });
    expect(lease.id).toMatch(/^database\/creds\/ro\/[\w-]{24}$/);
    expect(vault.loginTokens().at(-1)!.revoked).toBe(false);
    expect(vault.count("auth/token/revoke-self")).toBe(0);
    expect(vault.count("database/creds/ro")).toBe(1);
  });

  test("SECRET_ENTRYPOINT_VAULT_REVOKE=false keeps the token", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "jwt",
      SECRET_ENTRYPOINT_VAULT_ROLE: "ci",
      SECRET_ENTRYPOINT_VAULT_JWT_FILE: write("oidc", oidcJwt),
      SECRET_ENTRYPOINT_VAULT_REVOKE: "false",
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );
    expect(vault.requests[0]).toMatchObject({
      path: "auth/jwt/login",
      body: { role: "ci", jwt: oidcJwt },
    });
    expect(vault.loginTokens().at(-1)).toMatchObject({
      origin: "auth/jwt",
      revoked: false,
    });
  });

  test("approle with a role id variable and a secret id file", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
      SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
      SECRET_ENTRYPOINT_VAULT_SECRET_ID_FILE: write("sid", `${secretId}\n`),
    };
    const run = await read(env, ["vault:kv/app#api_key"]);

    expect(outcome(run, "vault:kv/app@latest")).toEqual({
      data: { api_key: "kv1-api-key" },
    });
    expect(vault.requests[0]).toMatchObject({
      path: "auth/approle/login",
      body: { role_id: roleId, secret_id: secretId },
    });
    expect(vault.loginTokens().at(-1)!.revoked).toBe(true);
  });

  test("a refused login is exit 77 with Vault's reason, not retried", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
      SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
      SECRET_ENTRYPOINT_VAULT_SECRET_ID: "wrong-secret-id",
    };
    const error = await failure(read(env, ["vault:kv/app"]));

    expect(error).toEqual({
      code: 77,
      message:
        "vault login with approle auth at auth/approle: Vault rejected the request: invalid role or secret ID (400); check the role id and secret id of the role at auth/approle (a secret id may have expired or run out of uses)",
    });
    expect(vault.count("auth/approle/login")).toBe(1);
  });

  test("a kubernetes login denied for the service account", async () => {
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
      SECRET_ENTRYPOINT_VAULT_ROLE: "app",
      SECRET_ENTRYPOINT_VAULT_AUTH_PATH: "kubernetes",
      SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write("bad-sa", "other"),
    };
    const error = await failure(read(env, ["vault:secret/app"]));

    expect(error).toEqual({
      code: 77,
      message:
        "vault login with kubernetes auth role app at auth/kubernetes: Vault rejected the request: permission denied (403); check that the role exists at auth/kubernetes and binds this pod's service account and namespace",
    });
  });

  test("a login waits while Vault is unavailable", async () => {
    vault.inject({
      path: "auth/kubernetes/login",
      action: { kind: "sealed" },
      times: 3,
    });
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
      SECRET_ENTRYPOINT_VAULT_ROLE: "app",
      SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write("sa", saJwt),
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );
    expect(vault.count("auth/kubernetes/login")).toBe(4);
  });

  test("a login gives up after the login wait with the server's error", async () => {
    vault.inject({ path: "auth/jwt/login", action: { kind: "sealed" } });
    const env = {
      VAULT_ADDR: vault.address,
      SECRET_ENTRYPOINT_VAULT_AUTH: "jwt",
      SECRET_ENTRYPOINT_VAULT_JWT_FILE: write("oidc", oidcJwt),
      SECRET_ENTRYPOINT_VAULT_LOGIN_WAIT: "1500ms",
    };
    const started = Date.now();
    const error = await failure(read(env, ["vault:secret/app"]));

    expect(Date.now() - started).toBeLessThan(2500);
    expect(error.code).toBe(69);
    expect(error.message).toMatch(
      /^vault login with jwt auth at auth\/jwt: Vault is sealed \(503\) after \d+ attempts; unseal it or point VAULT_ADDR at an unsealed node$/,
    );
  });
});

describe("faults", () => {
  test.each([
    ["500", { kind: "status", status: 500 } as const],
    ["429", { kind: "status", status: 429 } as const],
    ["412", { kind: "status", status: 412 } as const],
    ["a reset", { kind: "reset" } as const],
  ])("%s is retried", async (_, action) => {
    vault.inject({ path: "secret/data/app", action, times: 2 });
    const run = await read(tokenEnv(), ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );
    expect(vault.count("secret/data/app")).toBe(3);
  });

  test("a 5xx that lasts fails after VAULT_MAX_RETRIES, exit 69", async () => {
    vault.inject({
      path: "secret/data/app",
      action: { kind: "status", status: 502, errors: ["upstream down"] },
    });
    const run = await read(tokenEnv({ VAULT_MAX_RETRIES: "1" }), [
      "vault:secret/app",
    ]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 69,
      message:
        "vault secret secret/app: Vault answered upstream down (502 bad gateway) after 2 attempts",
    });
    expect(vault.count("secret/data/app")).toBe(2);
  });

  test("a sealed Vault is exit 69", async () => {
    vault.inject({ action: { kind: "sealed" } });
    const run = await read(tokenEnv(), ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 69,
      message:
        "vault secret secret/app: Vault is sealed (503) after 3 attempts; unseal it or point VAULT_ADDR at an unsealed node",
    });
  });

  test("other 4xx are not retried", async () => {
    vault.inject({
      path: "secret/data/app",
      action: { kind: "status", status: 400, errors: ["bad request body"] },
    });
    const run = await read(tokenEnv(), ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 65,
      message:
        "vault secret secret/app: Vault rejected the request: bad request body (400)",
    });
    expect(vault.count("secret/data/app")).toBe(1);
  });

  test("a redirect is not followed, exit 78", async () => {
    vault.inject({
      path: "secret/data/app",
      action: { kind: "status", status: 307, errors: [] },
    });
    const run = await read(tokenEnv(), ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 78,
      message:
        "vault secret secret/app: Vault answered with a redirect (307); point VAULT_ADDR at the active node or at the cluster's load balancer (redirects are not followed, so that the token goes to no other host)",
    });
    expect(vault.count("secret/data/app")).toBe(1);
  });

  test("a stalled request times out per attempt, exit 69", async () => {
    vault.inject({ path: "secret/data/app", action: { kind: "stall" } });
    const env = tokenEnv({ VAULT_CLIENT_TIMEOUT: "300ms" });
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 69,
      message: `vault secret secret/app: Vault at ${vault.address} is unreachable: no answer within the request timeout after 3 attempts`,
    });
  });

  test("the run's deadline stops a stalled read", async () => {
    vault.inject({ path: "secret/data/app", action: { kind: "stall" } });
    const started = Date.now();
    const run = await read(tokenEnv(), ["vault:secret/app"], 700);

    expect(Date.now() - started).toBeLessThan(1500);
    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 69,
      message: `vault secret secret/app: the run's deadline passed before Vault at ${vault.address} answered; raise --timeout or check Vault's health`,
    });
  });

  test("an unreachable Vault is exit 69", async () => {
    const closed = await FakeVault.start();
    await closed.close();
    const run = await read(
      { VAULT_ADDR: closed.address, VAULT_TOKEN: appToken },
      ["vault:secret/app"],
    );

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 69,
      message: `vault secret secret/app: Vault at ${closed.address} is unreachable: connection refused after 3 attempts`,
    });
  });
});

describe("settings", () => {
  test.each([
    [
      {},
      78,
      "VAULT_ADDR is not set; set it to the Vault server's address, e.g. VAULT_ADDR=https://vault.example.com:8200",
    ],
    [
      { VAULT_ADDR: "vault:8200" },
      78,
      "VAULT_ADDR=vault:8200 is not a Vault address; use http:// or https://, a host and an optional port, without query or fragment, e.g. https://vault.example.com:8200",
    ],
    [
      { VAULT_ADDR: "https://admin:pa55@vault.example.com:8200/?x=1" },
      78,
      "VAULT_ADDR=https://***@vault.example.com:8200/?x=1 is not a Vault address; use http:// or https://, a host and an optional port, without query or fragment, e.g. https://vault.example.com:8200",
    ],
    [
      { VAULT_NAMESPACE: "team-a\r\nX-Other: 1" },
      78,
      'VAULT_NAMESPACE="team-a\\r\\nX-Other: 1" holds a character an HTTP header cannot carry (U+000D at character 7); use the namespace path in printable ASCII, e.g. admin/team-a',
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_AUTH: "ldap" },
      78,
      "SECRET_ENTRYPOINT_VAULT_AUTH=ldap is not an auth method; use one of token, kubernetes, approle, jwt",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes" },
      78,
      "kubernetes auth needs SECRET_ENTRYPOINT_VAULT_ROLE; set it (SECRET_ENTRYPOINT_VAULT_AUTH=kubernetes)",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_AUTH: "jwt" },
      78,
      "jwt auth needs SECRET_ENTRYPOINT_VAULT_JWT_FILE; set it (SECRET_ENTRYPOINT_VAULT_AUTH=jwt)",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_AUTH: "approle" },
      78,
      "approle auth needs a role id: set SECRET_ENTRYPOINT_VAULT_ROLE_ID or SECRET_ENTRYPOINT_VAULT_ROLE_ID_FILE",
    ],
    [
      { VAULT_TOKEN: "a", SECRET_ENTRYPOINT_VAULT_TOKEN_FILE: "/t" },
      78,
      "VAULT_TOKEN and SECRET_ENTRYPOINT_VAULT_TOKEN_FILE are both set; set only one of them",
    ],
    [
      {
        SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
        SECRET_ENTRYPOINT_VAULT_ROLE_ID: "a",
        SECRET_ENTRYPOINT_VAULT_ROLE_ID_FILE: "/r",
      },
      78,
      "SECRET_ENTRYPOINT_VAULT_ROLE_ID and SECRET_ENTRYPOINT_VAULT_ROLE_ID_FILE are both set; set only one of them",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_AUTH_PATH: "k8s prod" },
      78,
      "SECRET_ENTRYPOINT_VAULT_AUTH_PATH=k8s prod is not an auth mount path; give the path the method is enabled at, e.g. kubernetes or k8s-prod",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_LOGIN_WAIT: "0s" },
      78,
      "SECRET_ENTRYPOINT_VAULT_LOGIN_WAIT=0s is not a duration; use e.g. 500ms, 30s, 2m or a number of seconds",
    ],
    [
      { VAULT_CLIENT_TIMEOUT: "soon" },
      78,
      "VAULT_CLIENT_TIMEOUT=soon is not a duration; use e.g. 500ms, 30s, 2m or a number of seconds",
    ],
    [
      { VAULT_MAX_RETRIES: "-1" },
      78,
      "VAULT_MAX_RETRIES=-1 is not a whole number from 0 to 10",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_CONCURRENCY: "0" },
      78,
      "SECRET_ENTRYPOINT_VAULT_CONCURRENCY=0 is not a whole number from 1 to 64",
    ],
    [
      { SECRET_ENTRYPOINT_VAULT_REVOKE: "no" },
      78,
      "SECRET_ENTRYPOINT_VAULT_REVOKE=no is not a boolean; use true or false",
    ],
    [
      { VAULT_SKIP_VERIFY: "yes" },
      78,
      "VAULT_SKIP_VERIFY=yes is not a boolean; use true or false (or 1, 0, t, f)",
    ],
    [
      { VAULT_CLIENT_CERT: "/c.pem" },
      78,
      "VAULT_CLIENT_CERT and VAULT_CLIENT_KEY go together: set both to use a client certificate, or neither",
    ],
    [
      { VAULT_CACERT: "/nonexistent/ca.pem" },
      78,
      "cannot read VAULT_CACERT=/nonexistent/ca.pem: ENOENT",
    ],
  ])("%o is exit %i", async (extra, code, message) => {
    const env = {
      ...(Object.keys(extra).length === 0 ? {} : { VAULT_ADDR: vault.address }),
      ...extra,
    } as Record<string, string>;
    const error = await failure(read(env, ["vault:secret/app"]));

    expect(error).toEqual({ code, message });
    expect(vault.requests).toEqual([]);
  });

  test("unknown settings, plain http to another host and skip-verify log warnings", async () => {
    const lines: string[] = [];
    const logger = pino(
      { level: "warn" },
      { write: (l: string) => lines.push(l) },
    );
    const provider = create({
      env: {
        VAULT_ADDR: "http://vault.invalid:8200",
        VAULT_TOKEN: appToken,
        VAULT_SKIP_VERIFY: "true",
        VAULT_MAX_RETRIES: "0",
        SECRET_ENTRYPOINT_VAULT_ROLEID: "typo",
      },
      logger,
      fileRoots: [],
      fileTrim: true,
    });
    const reference = parseReference("vault:secret/app", { fileRoots: [] })!;
    const context = {
      signal: AbortSignal.timeout(5000),
      deadline: Date.now() + 5000,
      logger,
    };
    await provider.read([{ identity: "x", reference }], context);
    await provider.close?.(context);

    const messages = lines.map((line) => JSON.parse(line).msg as string);
    expect(messages).toEqual([
      "SECRET_ENTRYPOINT_VAULT_ROLEID is not a setting of the vault provider and is ignored; see docs/vault.md for the valid ones",
      "VAULT_SKIP_VERIFY is set: Vault's certificate is not checked, so anyone on the network path can read the token and the secrets",
      "VAULT_ADDR is plain http:// to another host: the token and the secrets cross the network unencrypted; use https://",
    ]);
  });
});

describe("credentials that cannot be sent", () => {
  const tokenForm = "a Vault token is printable ASCII without spaces";
  const rows: Array<{
    name: string;
    env: () => Record<string, string>;
    credential: string;
    message: () => string;
  }> = [
    {
      name: "VAULT_TOKEN with a CR LF inside",
      env: () => ({ VAULT_TOKEN: `${appToken}\r\nX-Other: 1` }),
      credential: appToken,
      message: () =>
        `VAULT_TOKEN holds a character a Vault token cannot have (U+000D at character 24); ${tokenForm}: set VAULT_TOKEN to the token alone`,
    },
    {
      name: "VAULT_TOKEN with a non-ASCII character",
      env: () => ({ VAULT_TOKEN: "hvs.t\u00f6ken-\u20ac" }),
      credential: "hvs.t",
      message: () =>
        `VAULT_TOKEN holds a character a Vault token cannot have (U+00F6 at character 6); ${tokenForm}: set VAULT_TOKEN to the token alone`,
    },
    {
      name: "a token file with a second line",
      env: () => ({
        SECRET_ENTRYPOINT_VAULT_TOKEN_FILE: write(
          "two-lines",
          `${appToken}\nnext\n`,
        ),
      }),
      credential: appToken,
      message: () =>
        `${scratch}/two-lines (SECRET_ENTRYPOINT_VAULT_TOKEN_FILE) holds a character a Vault token cannot have (U+000A at character 24); ${tokenForm}: ${scratch}/two-lines should hold the token alone, a final newline allowed`,
    },
    {
      name: "~/.vault-token with a CR inside",
      env: () => {
        const home = path.join(scratch, "home-cr");
        fs.mkdirSync(home, { recursive: true });
        fs.writeFileSync(path.join(home, ".vault-token"), `hvs.a\rb\n`);
        return { VAULT_TOKEN: "", HOME: home };
      },
      credential: "hvs.a",
      message: () =>
        `${scratch}/home-cr/.vault-token (the Vault CLI's token file) holds a character a Vault token cannot have (U+000D at character 6); ${tokenForm}: ${scratch}/home-cr/.vault-token should hold the token alone, a final newline allowed`,
    },
    {
      name: "a service account token with a line break inside",
      env: () => ({
        SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
        SECRET_ENTRYPOINT_VAULT_ROLE: "app",
        SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write(
          "sa-broken",
          `${saJwt}\r\n${saJwt}\n`,
        ),
      }),
      credential: saJwt,
      message: () =>
        `${scratch}/sa-broken (SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE) holds a character a JWT cannot have (U+000D at character ${saJwt.length + 1}); a JWT is printable ASCII without spaces: ${scratch}/sa-broken should hold the JWT alone, a final newline allowed`,
    },
    {
      name: "a secret id with a tab inside",
      env: () => ({
        SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
        SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
        SECRET_ENTRYPOINT_VAULT_SECRET_ID: `f00d\t${secretId}`,
      }),
      credential: secretId,
      message: () =>
        "SECRET_ENTRYPOINT_VAULT_SECRET_ID holds a character a secret id cannot have (U+0009 at character 5); a secret id is one line without control characters: set SECRET_ENTRYPOINT_VAULT_SECRET_ID to the secret id alone",
    },
  ];

  test.each(rows)("$name: exit 78 before any request", async (row) => {
    const env = {
      VAULT_ADDR: vault.address,
      VAULT_MAX_RETRIES: "0",
      ...row.env(),
    };
    const error = await failure(read(env, ["vault:secret/app"]));

    expect(error).toEqual({ code: 78, message: row.message() });
    expect(error.message).not.toContain(row.credential);
    expect(vault.requests).toEqual([]);
  });
});

describe("TLS", () => {
  const tls = useTlsVaults(startVault);

  test("a custom CA by file and by folder", async () => {
    const settings: Array<Record<string, string>> = [
      { VAULT_CACERT: tls.pki.caCert },
      { VAULT_CAPATH: tls.pki.caDir },
    ];
    for (const setting of settings) {
      const env = {
        VAULT_ADDR: tls.secure.address,
        VAULT_TOKEN: appToken,
        ...setting,
      };
      const run = await read(env, ["vault:secret/app"]);

      expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
        "data.user",
        "app",
      );
    }
  });

  test("VAULT_TLS_SERVER_NAME checks the certificate against that name", async () => {
    const env = {
      VAULT_ADDR: tls.secure.address.replace("127.0.0.1", "localhost"),
      VAULT_TOKEN: appToken,
      VAULT_CACERT: tls.pki.caCert,
      VAULT_TLS_SERVER_NAME: "vault.example.com",
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 78,
      message: `vault secret secret/app: TLS connection to ${env.VAULT_ADDR} failed: Vault's certificate is not valid for this host name (ERR_TLS_CERT_ALTNAME_INVALID); ${tlsHint}`,
    });
  });

  test("a wrong CA is exit 78 naming the CA settings", async () => {
    tls.secure.requests.splice(0);
    const env = {
      VAULT_ADDR: tls.secure.address,
      VAULT_TOKEN: appToken,
      VAULT_CACERT: tls.pki.otherCaCert,
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toEqual({
      code: 78,
      message: `vault secret secret/app: TLS connection to ${tls.secure.address} failed: Vault's certificate is not signed by a trusted CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE); check VAULT_CACERT or VAULT_CAPATH (the CA that signed Vault's certificate), VAULT_TLS_SERVER_NAME, and VAULT_CLIENT_CERT and VAULT_CLIENT_KEY if Vault asks for a client certificate`,
    });
    expect(tls.secure.requests).toEqual([]);
  });

  test("VAULT_SKIP_VERIFY accepts any certificate", async () => {
    const env = {
      VAULT_ADDR: tls.secure.address,
      VAULT_TOKEN: appToken,
      VAULT_SKIP_VERIFY: "1",
    };
    const run = await read(env, ["vault:secret/app"]);

    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );
  });

  test("a client certificate where Vault requires one", async () => {
    const base = {
      VAULT_ADDR: tls.mutual.address,
      VAULT_TOKEN: appToken,
      VAULT_CACERT: tls.pki.caCert,
    };
    const run = await read(
      {
        ...base,
        VAULT_CLIENT_CERT: tls.pki.clientCert,
        VAULT_CLIENT_KEY: tls.pki.clientKey,
      },
      ["vault:secret/app"],
    );
    expect(outcome(run, "vault:secret/app@latest")).toHaveProperty(
      "data.user",
      "app",
    );

    const without = await read(base, ["vault:secret/app"]);
    const result = outcome(without, "vault:secret/app@latest");
    expect(result).toEqual({
      code: 78,
      message: `vault secret secret/app: TLS connection to ${tls.mutual.address} failed: Vault requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); ${tlsHint}`,
    });
  });
});
