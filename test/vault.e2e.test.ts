/**
 * `vault:` references through the built bundle, against the local fake
 * Vault: each auth method, KV v1 and v2, versions, a leased database
 * credential, every fault with its exit code and message, and TLS. The
 * bundle finds the fake through VAULT_ADDR, as it would find a real Vault.
 */
import fs from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";

import {
  afterAll,
  afterEach,
  beforeAll,
  beforeEach,
  describe,
  expect,
  test,
} from "vitest";

import { tlsHint } from "../providers/vault/errors.ts";
import {
  FakeVault,
  type Fault,
  type FakeVaultOptions,
} from "./servers/vault.ts";
import {
  baseEnv,
  bundle,
  expectNoLeak,
  logLines,
  reportCommand,
  runEntrypoint,
  type Report,
  type RunResult,
} from "./support/run.ts";
import { useTlsVaults } from "./support/tls.ts";
import { privateFolder } from "./support/scratch.ts";

const rootToken = "hvs.e2e-root-token";
const appToken = "hvs.e2e-app-token";
const saJwt = "eyJhbGciOiJSUzI1NiJ9.e2e-service-account.sig";
const oidcJwt = "eyJhbGciOiJSUzI1NiJ9.e2e-oidc.sig";
const roleId = "e2e-role-id-4711";
const secretId = "e2e-secret-id-0815";

// Every credential and value the fake holds: no run may print one.
const secrets = [
  rootToken,
  appToken,
  saJwt,
  oidcJwt,
  roleId,
  secretId,
  "v2-password-old",
  "v2-password-new",
  "kv1-api-key",
  "rotated-one",
  "rotated-two",
];

let vault: FakeVault;
let dir: string;

async function startVault(options: FakeVaultOptions = {}) {
  const server = await FakeVault.start(options);
  server.addToken(rootToken, ["root"]);
  server.addPolicy("app", ["secret/data/app", "kv/*", "database/creds/ro"]);
  server.addToken(appToken, ["app"]);
  server.mountKv("secret", 2);
  server.mountKv("kv", 1);
  server.mountDatabase("database", ["ro"]);
  server.writeKv("secret", "app", { password: "v2-password-old" });
  server.writeKv("secret", "app", { password: "v2-password-new", n: 7 });
  server.writeKv("kv", "app", { api_key: "kv1-api-key" });
  server.writeKv("secret", "rotated", { k: "rotated-one" });
  server.writeKv("secret", "rotated", { k: "rotated-two" });
  server.deleteKvVersion("secret", "rotated", 2);
  server.addKubernetesRole("app", saJwt, ["app"]);
  server.addAppRole(roleId, secretId, ["app"]);
  server.addJwtRole("ci", oidcJwt, ["app"]);
  return server;
}

beforeAll(async () => {
  if (!fs.existsSync(bundle)) {
    throw new Error(`${bundle} is missing: run npm run build first`);
  }
  vault = await startVault();
});

afterAll(async () => {
  await vault.close();
});

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "vault-e2e-"));
  fs.chmodSync(dir, 0o777);
});

afterEach(() => {
  vault.clearFaults();
  vault.requests.splice(0);
  fs.rmSync(dir, { recursive: true, force: true });
});

function vaultEnv(variables: Record<string, string>, server = vault) {
  return baseEnv({
    VAULT_ADDR: server.address,
    SECRET_ENTRYPOINT_FILES_DIR: path.join(privateFolder(dir), "files"),
    ...variables,
  });
}

function write(name: string, content: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}

/** Runs the report command under the entrypoint with `env`. */
async function run(env: Record<string, string>, extraSecrets: string[] = []) {
  const { reportPath, command } = reportCommand(dir);
  const result = await runEntrypoint(["--", ...command], { env });
  expectNoLeak(result, [...secrets, ...extraSecrets]);
  return { result, reportPath };
}

function report(reportPath: string): Report {
  return JSON.parse(fs.readFileSync(reportPath, "utf8")) as Report;
}

function errorMessages(result: RunResult): unknown[] {
  return logLines(result.stderr)
    .filter((line) => line.level === 50)
    .map((line) => line.msg);
}

/** The token each login issued; they must not appear in any output. */
function loginTokens(server = vault): string[] {
  return server.loginTokens().map((entry) => entry.token);
}

describe("reads", () => {
  test("KV v2 with and without data/, versions and KV v1", async () => {
    const { result, reportPath } = await run(
      vaultEnv({
        VAULT_TOKEN: appToken,
        NEW: "vault:secret/app#password",
        SAME: "vault:secret/data/app#password",
        OLD: "vault:secret/app?version=1#password",
        LEGACY: "vault:secret/app#password#1",
        NUMBER: "vault:secret/app#n",
        WHOLE: "vault:secret/app",
        API: "vault:kv/app#api_key",
        URL: "https://api.example.com/?key=${vault:kv/app#api_key}",
      }),
    );

    expect(result.code).toBe(0);
    const env = report(reportPath).env;
    expect({
      NEW: env.NEW,
      SAME: env.SAME,
      OLD: env.OLD,
      LEGACY: env.LEGACY,
      NUMBER: env.NUMBER,
      WHOLE: env.WHOLE,
      API: env.API,
      URL: env.URL,
    }).toEqual({
      NEW: "v2-password-new",
      SAME: "v2-password-new",
      OLD: "v2-password-old",
      LEGACY: "v2-password-old",
      NUMBER: "7",
      WHOLE: '{"password":"v2-password-new","n":7}',
      API: "kv1-api-key",
      URL: "https://api.example.com/?key=kv1-api-key",
    });
    // The Vault settings and the token stay with the entrypoint.
    expect(
      Object.keys(env).filter((name) => name.startsWith("VAULT_")),
    ).toEqual([]);
    // One read per distinct path and version.
    expect(vault.count("kv/app")).toBe(1);
    expect(
      vault.requests.filter(
        (r) => r.path === "secret/data/app" && r.query === "?version=1",
      ).length,
    ).toBe(1);
    expect(
      vault.requests.filter(
        (r) => r.path === "secret/data/app" && r.query === "",
      ).length,
    ).toBe(2);
  });

  test("two keys of one dynamic secret come from one read and one lease", async () => {
    const { result, reportPath } = await run(
      vaultEnv({
        SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
        SECRET_ENTRYPOINT_VAULT_ROLE: "app",
        SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write("sa", saJwt),
        DATABASE_URL:
          "postgres://${vault:database/creds/ro#username}:${vault:database/creds/ro#password}@db:5432/app",
        DB_USER: "vault:database/creds/ro#username",
      }),
    );

    expect(result.code).toBe(0);
    const env = report(reportPath).env;
    const match =
      /^postgres:\/\/(v-token-ro-[\w-]{20}):(A1a-[\w-]{20})@db:5432\/app$/.exec(
        env.DATABASE_URL ?? "",
      );
    expect(match).not.toBeNull();
    expect(env.DB_USER).toBe(match![1]);
    expect(vault.count("database/creds/ro")).toBe(1);
    expect(vault.leases.filter((lease) => !lease.revoked).length).toBe(
      vault.leases.length,
    );
    // The lease lives as long as the login token: it is not revoked.
    expect(vault.count("auth/token/revoke-self")).toBe(0);
    expectNoLeak(result, [match![2]!, ...loginTokens()]);
  });
});

describe("auth methods", () => {
  test.each([
    [
      "kubernetes",
      () => ({
        SECRET_ENTRYPOINT_VAULT_ROLE: "app",
        SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: write(
          "sa",
          `${saJwt}\n`,
        ),
      }),
      { role: "app", jwt: saJwt },
    ],
    [
      "approle",
      () => ({
        SECRET_ENTRYPOINT_VAULT_ROLE_ID_FILE: write("role-id", roleId),
        SECRET_ENTRYPOINT_VAULT_SECRET_ID_FILE: write("secret-id", secretId),
      }),
      { role_id: roleId, secret_id: secretId },
    ],
    [
      "jwt",
      () => ({
        SECRET_ENTRYPOINT_VAULT_ROLE: "ci",
        SECRET_ENTRYPOINT_VAULT_JWT_FILE: write("oidc", oidcJwt),
      }),
      { role: "ci", jwt: oidcJwt },
    ],
  ])(
    "%s logs in, reads, and revokes its token",
    async (method, settings, body) => {
      const { result, reportPath } = await run(
        vaultEnv({
          SECRET_ENTRYPOINT_VAULT_AUTH: method,
          ...settings(),
          SECRET_ENTRYPOINT_KEEP_ENV: "VAULT_ADDR",
          // Every log line there is, including any library's debug output.
          // (NODE_DEBUG=http is left out: Node itself prints headers then,
          // and warns that it does.)
          SECRET_ENTRYPOINT_LOG_LEVEL: "debug",
          DEBUG: "*",
          PASSWORD: "vault:secret/app#password",
        }),
      );

      expect(result.code).toBe(0);
      const env = report(reportPath).env;
      expect(env.PASSWORD).toBe("v2-password-new");
      expect(env.VAULT_ADDR).toBe(vault.address);
      expect(vault.requests[0]).toMatchObject({
        method: "POST",
        path: `auth/${method}/login`,
        body,
      });
      const token = vault.loginTokens().at(-1)!;
      expect(token).toMatchObject({ origin: `auth/${method}`, revoked: true });
      expect(vault.requests.at(-1)).toMatchObject({
        path: "auth/token/revoke-self",
        token: token.token,
      });
      expectNoLeak(result, [token.token]);
      expect(JSON.stringify(env)).not.toContain(token.token);
    },
  );

  test("a plain VAULT_TOKEN just works and is not passed on", async () => {
    const { result, reportPath } = await run(
      vaultEnv({
        VAULT_TOKEN: appToken,
        PASSWORD: "vault:secret/app#password",
      }),
    );

    expect(result.code).toBe(0);
    const env = report(reportPath).env;
    expect(env.PASSWORD).toBe("v2-password-new");
    expect(env.VAULT_TOKEN).toBeUndefined();
    expect(vault.requests.every((r) => r.token === appToken)).toBe(true);
  });
});

describe("failures: exit code, message, and the command never starts", () => {
  const rows: Array<{
    name: string;
    env: Record<string, string>;
    fault?: Fault;
    code: number;
    message: string | (() => string);
  }> = [
    {
      name: "a path outside the policy",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/other#k" },
      code: 77,
      message:
        "failed to resolve X from vault:secret/other#k: vault secret secret/other: permission denied (403); check that the policy of the token allows read on secret/data/other",
    },
    {
      name: "an invalid token",
      env: { VAULT_TOKEN: "hvs.expired-token", X: "vault:secret/app#password" },
      code: 77,
      message:
        "failed to resolve X from vault:secret/app#password: vault secret secret/app: permission denied (403); the Vault token is not valid (expired, revoked, or from another namespace than VAULT_NAMESPACE)",
    },
    {
      name: "a missing secret",
      env: { VAULT_TOKEN: rootToken, X: "vault:secret/missing#k" },
      code: 66,
      message:
        "failed to resolve X from vault:secret/missing#k: vault secret secret/missing: not found (404) at secret/data/missing; the mount secret/ is KV version 2; check the secret's name (vault kv list secret/)",
    },
    {
      name: "a KV v1 path written with data/",
      env: { VAULT_TOKEN: rootToken, X: "vault:kv/data/app#api_key" },
      code: 66,
      message:
        "failed to resolve X from vault:kv/data/app#api_key: vault secret kv/data/app: not found (404) at kv/data/app; the mount kv/ is KV version 1, where data/ is not part of the path; did you mean kv/app?",
    },
    {
      name: "a sealed Vault",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/app#password" },
      fault: { action: { kind: "sealed" } },
      code: 69,
      message:
        "failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault is sealed (503) after 3 attempts; unseal it or point VAULT_ADDR at an unsealed node",
    },
    {
      name: "a 500 that lasts",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/app#password" },
      fault: {
        path: "secret/data/app",
        action: {
          kind: "status",
          status: 500,
          errors: ["storage backend down"],
        },
      },
      code: 69,
      message:
        "failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault answered storage backend down (500) after 3 attempts",
    },
    {
      name: "connection resets",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/app#password" },
      fault: { path: "secret/data/app", action: { kind: "reset" } },
      code: 69,
      message: () =>
        `failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault at ${vault.address} is unreachable: connection reset after 3 attempts`,
    },
    {
      name: "a stalled Vault",
      env: {
        VAULT_TOKEN: appToken,
        VAULT_CLIENT_TIMEOUT: "300ms",
        X: "vault:secret/app#password",
      },
      fault: { path: "secret/data/app", action: { kind: "stall" } },
      code: 69,
      message: () =>
        `failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault at ${vault.address} is unreachable: no answer within the request timeout after 3 attempts`,
    },
    {
      name: "a path that names a KV v2 mount",
      env: { VAULT_TOKEN: rootToken, X: "vault:secret#x" },
      code: 65,
      message:
        "failed to resolve X from vault:secret#x: vault secret secret: the reference names the mount secret/ and must name a secret under it (e.g. vault:secret/app#x)",
    },
    {
      name: "a path that names a KV v2 mount with data",
      env: { VAULT_TOKEN: rootToken, X: "vault:secret/data#x" },
      code: 65,
      message:
        "failed to resolve X from vault:secret/data#x: vault secret secret/data: the reference names the mount secret/ and must name a secret under it (e.g. vault:secret/app#x)",
    },
    {
      name: "a path that names a KV v1 mount",
      env: { VAULT_TOKEN: rootToken, X: "vault:kv" },
      code: 65,
      message:
        "failed to resolve X from vault:kv: vault secret kv: the reference names the mount kv/ and must name a secret under it (e.g. vault:kv/app)",
    },
    {
      name: "a 502 from a proxy that lasts",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/app#password" },
      fault: {
        path: "secret/data/app",
        action: { kind: "status", status: 502 },
      },
      code: 69,
      message:
        "failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault answered bad gateway (502) after 3 attempts",
    },
    {
      name: "a 504 from a proxy that lasts",
      env: { VAULT_TOKEN: appToken, X: "vault:secret/app#password" },
      fault: {
        path: "secret/data/app",
        action: { kind: "status", status: 504 },
      },
      code: 69,
      message:
        "failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault answered gateway timeout (504) after 3 attempts",
    },
    {
      name: "a refused login",
      env: {
        SECRET_ENTRYPOINT_VAULT_AUTH: "kubernetes",
        SECRET_ENTRYPOINT_VAULT_ROLE: "nobody",
        SECRET_ENTRYPOINT_VAULT_KUBERNETES_TOKEN_FILE: "SA_FILE",
        X: "vault:secret/app#password",
      },
      code: 77,
      message:
        'failed to resolve X from vault:secret/app#password: vault login with kubernetes auth role nobody at auth/kubernetes: Vault rejected the request: invalid role name "nobody" (400); check that the role exists at auth/kubernetes and binds this pod\'s service account and namespace',
    },
    {
      name: "no VAULT_ADDR",
      env: { VAULT_ADDR: "", VAULT_TOKEN: appToken, X: "vault:secret/app" },
      code: 78,
      message:
        "failed to resolve X from vault:secret/app: VAULT_ADDR is not set; set it to the Vault server's address, e.g. VAULT_ADDR=https://vault.example.com:8200",
    },
    {
      name: "a malformed VAULT_SKIP_VERIFY",
      env: {
        VAULT_TOKEN: appToken,
        VAULT_SKIP_VERIFY: "maybe",
        X: "vault:secret/app",
      },
      code: 78,
      message:
        "failed to resolve X from vault:secret/app: VAULT_SKIP_VERIFY=maybe is not a boolean; use true or false (or 1, 0, t, f)",
    },
    {
      name: "an unknown auth method",
      env: { SECRET_ENTRYPOINT_VAULT_AUTH: "github", X: "vault:secret/app" },
      code: 78,
      message:
        "failed to resolve X from vault:secret/app: SECRET_ENTRYPOINT_VAULT_AUTH=github is not an auth method; use one of token, kubernetes, approle, jwt",
    },
  ];
  test.each(rows)("$name: exit $code", async (row) => {
    if (row.fault !== undefined) vault.inject(row.fault);
    const env = Object.fromEntries(
      Object.entries(row.env).map(([name, value]) => [
        name,
        value === "SA_FILE" ? write("sa", saJwt) : value,
      ]),
    );
    const { result, reportPath } = await run(vaultEnv(env));

    const message =
      typeof row.message === "function" ? row.message() : row.message;
    expect(result.code).toBe(row.code);
    expect(errorMessages(result)).toEqual([message]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("a deleted version: exit 66, and the version before it reads", async () => {
    const { result, reportPath } = await run(
      vaultEnv({ VAULT_TOKEN: rootToken, X: "vault:secret/rotated#k" }),
    );

    expect(result.code).toBe(66);
    expect(errorMessages(result)).toEqual([
      expect.stringMatching(
        /^failed to resolve X from vault:secret\/rotated#k: vault secret secret\/rotated: the latest version \(2\) was deleted at \d{4}-\d\d-\d\dT[\d:.]+Z; restore it with vault kv undelete -versions=2 secret\/rotated, or read another with \?version=$/,
      ),
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);

    const older = await run(
      vaultEnv({
        VAULT_TOKEN: rootToken,
        X: "vault:secret/rotated?version=1#k",
      }),
    );
    expect(older.result.code).toBe(0);
    expect(report(older.reportPath).env.X).toBe("rotated-one");
  });

  test("a path that names a mount reads nothing", async () => {
    const { result } = await run(
      vaultEnv({ VAULT_TOKEN: rootToken, X: "vault:secret#x" }),
    );

    expect(result.code).toBe(65);
    expect(vault.count("secret/data/secret")).toBe(0);
  });

  test("credentials in Vault's error strings are redacted, and long strings cut", async () => {
    vault.inject({
      path: "secret/data/app",
      action: {
        kind: "status",
        status: 400,
        errors: [
          `bad thing ${appToken}`,
          "planted hvs.APPTOKEN-PLANTED and s.abcdefghijklmnopqrstuvwx",
          "y".repeat(500),
        ],
      },
    });
    const { result, reportPath } = await run(
      vaultEnv({ VAULT_TOKEN: appToken, X: "vault:secret/app#password" }),
      ["hvs.APPTOKEN-PLANTED", "s.abcdefghijklmnopqrstuvwx", "y".repeat(201)],
    );

    expect(result.code).toBe(65);
    expect(errorMessages(result)).toEqual([
      `failed to resolve X from vault:secret/app#password: vault secret secret/app: Vault rejected the request: bad thing [redacted]; planted [redacted] and [redacted]; ${"y".repeat(200)}... (400)`,
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("a login's credentials in Vault's error strings are redacted", async () => {
    vault.inject({
      path: "auth/approle/login",
      action: {
        kind: "status",
        status: 400,
        errors: [`invalid secret id ${secretId} for role id ${roleId}`],
      },
    });
    const { result } = await run(
      vaultEnv({
        VAULT_TOKEN: appToken,
        SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
        SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
        SECRET_ENTRYPOINT_VAULT_SECRET_ID_FILE: write("sid", `${secretId}\n`),
        X: "vault:secret/app#password",
      }),
    );

    expect(result.code).toBe(77);
    expect(errorMessages(result)).toEqual([
      "failed to resolve X from vault:secret/app#password: vault login with approle auth at auth/approle: Vault rejected the request: invalid secret id [redacted] for role id [redacted] (400); check the role id and secret id of the role at auth/approle (a secret id may have expired or run out of uses)",
    ]);
  });

  test("a server that is not Vault: exit 78", async () => {
    const other = http.createServer((_, response) => {
      response.writeHead(404, { "Content-Type": "text/plain" }).end("nope");
    });
    await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
    const { port } = other.address() as AddressInfo;
    const address = `http://127.0.0.1:${port}`;
    try {
      const { result, reportPath } = await run(
        vaultEnv({
          VAULT_ADDR: address,
          VAULT_TOKEN: appToken,
          X: "vault:secret/app#password",
        }),
      );

      expect(result.code).toBe(78);
      expect(errorMessages(result)).toEqual([
        `failed to resolve X from vault:secret/app#password: vault secret secret/app: the server at VAULT_ADDR (${address}) answered 404 to Vault's mount lookup; check that VAULT_ADDR points at Vault`,
      ]);
      expect(fs.existsSync(reportPath)).toBe(false);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  test("https:// to a server that speaks plain HTTP: exit 78 at once", async () => {
    const address = vault.address.replace(/^http:/, "https:");
    const { result, reportPath } = await run(
      vaultEnv({
        VAULT_ADDR: address,
        VAULT_TOKEN: appToken,
        X: "vault:secret/app#password",
      }),
    );

    expect(result.code).toBe(78);
    expect(errorMessages(result)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^failed to resolve X from vault:secret/app#password: vault secret secret/app: TLS connection to ${address} failed: the server does not answer TLS \\((EPROTO|ERR_SSL_WRONG_VERSION_NUMBER)\\); check the scheme and port of VAULT_ADDR \\(https:// needs a server that speaks TLS there\\)$`,
        ),
      ),
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("an unreachable Vault: exit 69", async () => {
    const closed = await FakeVault.start();
    await closed.close();
    const { result, reportPath } = await run(
      vaultEnv({ VAULT_TOKEN: appToken, X: "vault:kv/app#api_key" }, closed),
    );

    expect(result.code).toBe(69);
    expect(errorMessages(result)).toEqual([
      `failed to resolve X from vault:kv/app#api_key: vault secret kv/app: Vault at ${closed.address} is unreachable: connection refused after 3 attempts`,
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("faults that pass are retried and the command starts", async () => {
    vault.inject({
      path: "secret/data/app",
      action: { kind: "status", status: 503 },
      times: 1,
    });
    vault.inject({ path: "kv/app", action: { kind: "reset" }, times: 1 });
    vault.inject({
      path: "database/creds/ro",
      action: { kind: "status", status: 429 },
      times: 2,
    });
    const { result, reportPath } = await run(
      vaultEnv({
        VAULT_TOKEN: appToken,
        A: "vault:secret/app#password",
        B: "vault:kv/app#api_key",
        C: "vault:database/creds/ro#username",
      }),
    );

    expect(result.code).toBe(0);
    const env = report(reportPath).env;
    expect(env.A).toBe("v2-password-new");
    expect(env.B).toBe("kv1-api-key");
    expect(env.C).toMatch(/^v-token-ro-/);
    expect(vault.count("secret/data/app")).toBe(2);
    expect(vault.count("kv/app")).toBe(2);
    expect(vault.count("database/creds/ro")).toBe(3);
  });
});

describe("a credential that cannot go into a request: exit 78 at once", () => {
  // Not a token the fake knows: only the checks stand between it and the
  // output. Each part is checked, and the JSON-escaped whole.
  const head = "hvs.e2e-unsendable-head";
  const tail = "e2e-unsendable-tail";
  const tokenForm = "a Vault token is printable ASCII without spaces";
  const rows: Array<{
    name: string;
    env: () => Record<string, string>;
    value: string;
    message: () => string;
  }> = [
    {
      name: "VAULT_TOKEN with CR LF inside",
      env: () => ({ VAULT_TOKEN: `${head}\r\n${tail}` }),
      value: `${head}\r\n${tail}`,
      message: () =>
        `failed to resolve X from vault:secret/app#password: VAULT_TOKEN holds a character a Vault token cannot have (U+000D at character ${head.length + 1}); ${tokenForm}: set VAULT_TOKEN to the token alone`,
    },
    {
      name: "VAULT_TOKEN with a non-ASCII character",
      env: () => ({ VAULT_TOKEN: `${head}\u20ac${tail}` }),
      value: `${head}\u20ac${tail}`,
      message: () =>
        `failed to resolve X from vault:secret/app#password: VAULT_TOKEN holds a character a Vault token cannot have (U+20AC at character ${head.length + 1}); ${tokenForm}: set VAULT_TOKEN to the token alone`,
    },
    {
      name: "a token file with CR LF line ends and a second line",
      env: () => ({
        SECRET_ENTRYPOINT_VAULT_TOKEN_FILE: write(
          "token",
          `${head}\r\n${tail}\r\n`,
        ),
      }),
      value: `${head}\r\n${tail}`,
      message: () =>
        `failed to resolve X from vault:secret/app#password: ${dir}/token (SECRET_ENTRYPOINT_VAULT_TOKEN_FILE) holds a character a Vault token cannot have (U+000D at character ${head.length + 1}); ${tokenForm}: ${dir}/token should hold the token alone, a final newline allowed`,
    },
    {
      name: "a JWT file with a line break inside",
      env: () => ({
        SECRET_ENTRYPOINT_VAULT_AUTH: "jwt",
        SECRET_ENTRYPOINT_VAULT_ROLE: "ci",
        SECRET_ENTRYPOINT_VAULT_JWT_FILE: write("jwt", `${head}\n${tail}\n`),
      }),
      value: `${head}\n${tail}`,
      message: () =>
        `failed to resolve X from vault:secret/app#password: ${dir}/jwt (SECRET_ENTRYPOINT_VAULT_JWT_FILE) holds a character a JWT cannot have (U+000A at character ${head.length + 1}); a JWT is printable ASCII without spaces: ${dir}/jwt should hold the JWT alone, a final newline allowed`,
    },
  ];

  test("VAULT_TOKEN with a final CR LF or newline: trimmed, as documented", async () => {
    for (const end of ["\r\n", "\n"]) {
      const { result, reportPath } = await run(
        vaultEnv({ VAULT_TOKEN: `${appToken}${end}`, X: "vault:secret/app" }),
      );

      expect(result.code).toBe(0);
      expect(JSON.parse(report(reportPath).env.X!)).toHaveProperty(
        "password",
        "v2-password-new",
      );
      fs.rmSync(reportPath);
    }
  });

  test.each(rows)("$name", async (row) => {
    const { result, reportPath } = await run(
      vaultEnv({ ...row.env(), X: "vault:secret/app#password" }),
      [head, tail, JSON.stringify(row.value).slice(1, -1)],
    );

    expect(result.code).toBe(78);
    expect(errorMessages(result)).toEqual([row.message()]);
    expect(vault.requests).toEqual([]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });
});

describe("namespaces", () => {
  test("VAULT_NAMESPACE scopes the login and the reads", async () => {
    const server = await FakeVault.start();
    server.mountKv("secret", 2, { namespace: "team-a" });
    server.writeKv("secret", "app", { k: "team-a-value" }, "team-a");
    server.mountKv("secret", 2);
    server.writeKv("secret", "app", { k: "root-value" });
    server.addPolicy("app", ["secret/data/app"]);
    server.addAppRole(roleId, secretId, ["app"], "approle", "team-a");
    try {
      const login = {
        SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
        SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
        SECRET_ENTRYPOINT_VAULT_SECRET_ID: secretId,
        X: "vault:secret/app#k",
      };
      const { result, reportPath } = await run(
        vaultEnv({ ...login, VAULT_NAMESPACE: "team-a" }, server),
        ["team-a-value", "root-value"],
      );

      expect(result.code).toBe(0);
      expect(report(reportPath).env.X).toBe("team-a-value");
      expect(server.requests.map((r) => r.namespace)).toEqual(
        server.requests.map(() => "team-a"),
      );
      expectNoLeak(result, loginTokens(server));

      // The role lives in team-a only: without the namespace, no login.
      const outside = await run(vaultEnv(login, server));
      expect(outside.result.code).toBe(77);
    } finally {
      await server.close();
    }
  });
});

describe("TLS", () => {
  const tls = useTlsVaults(startVault);

  test("a custom CA", async () => {
    const { result, reportPath } = await run(
      vaultEnv(
        {
          VAULT_TOKEN: appToken,
          VAULT_CACERT: tls.pki.caCert,
          X: "vault:secret/app#password",
        },
        tls.secure,
      ),
    );

    expect(result.code).toBe(0);
    expect(report(reportPath).env.X).toBe("v2-password-new");
  });

  test("a wrong CA: exit 78 naming the CA settings", async () => {
    const { result, reportPath } = await run(
      vaultEnv(
        {
          VAULT_TOKEN: appToken,
          VAULT_CACERT: tls.pki.otherCaCert,
          X: "vault:secret/app#password",
        },
        tls.secure,
      ),
    );

    expect(result.code).toBe(78);
    expect(errorMessages(result)).toEqual([
      `failed to resolve X from vault:secret/app#password: vault secret secret/app: TLS connection to ${tls.secure.address} failed: Vault's certificate is not signed by a trusted CA (UNABLE_TO_VERIFY_LEAF_SIGNATURE); ${tlsHint}`,
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("an unreadable CA file: exit 78", async () => {
    const { result, reportPath } = await run(
      vaultEnv(
        {
          VAULT_TOKEN: appToken,
          VAULT_CACERT: path.join(dir, "missing.pem"),
          X: "vault:secret/app#password",
        },
        tls.secure,
      ),
    );

    expect(result.code).toBe(78);
    expect(errorMessages(result)).toEqual([
      `failed to resolve X from vault:secret/app#password: cannot read VAULT_CACERT=${dir}/missing.pem: ENOENT`,
    ]);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  test("a client certificate, and its absence", async () => {
    const base = {
      VAULT_CACERT: tls.pki.caCert,
      SECRET_ENTRYPOINT_VAULT_AUTH: "approle",
      SECRET_ENTRYPOINT_VAULT_ROLE_ID: roleId,
      SECRET_ENTRYPOINT_VAULT_SECRET_ID: secretId,
      X: "vault:secret/app#password",
    };
    const withCert = await run(
      vaultEnv(
        {
          ...base,
          VAULT_CLIENT_CERT: tls.pki.clientCert,
          VAULT_CLIENT_KEY: tls.pki.clientKey,
        },
        tls.mutual,
      ),
    );
    expect(withCert.result.code).toBe(0);
    expect(report(withCert.reportPath).env.X).toBe("v2-password-new");
    expect(tls.mutual.loginTokens().at(-1)!.revoked).toBe(true);
    expectNoLeak(withCert.result, loginTokens(tls.mutual));
    fs.rmSync(withCert.reportPath);

    const without = await run(vaultEnv(base, tls.mutual));
    expect(without.result.code).toBe(78);
    expect(errorMessages(without.result)).toEqual([
      `failed to resolve X from vault:secret/app#password: vault login with approle auth at auth/approle: TLS connection to ${tls.mutual.address} failed: Vault requires a client certificate (ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED); ${tlsHint}`,
    ]);
    expect(fs.existsSync(without.reportPath)).toBe(false);
  });
});
