/**
 * The fake Vault's own answers, checked against the shapes Vault's API
 * documentation gives, for the endpoints the provider tests do not reach.
 */
import { afterAll, beforeAll, expect, test } from "vitest";

import { FakeVault } from "./servers/vault.ts";

let vault: FakeVault;

beforeAll(async () => {
  vault = await FakeVault.start();
  vault.addToken("root", ["root"]);
  vault.mountKv("secret", 2);
  vault.writeKv("secret", "app", { a: "1" });
  vault.writeKv("secret", "app", { a: "2" });
  vault.deleteKvVersion("secret", "app", 1);
});

afterAll(async () => {
  await vault.close();
});

async function get(path: string, token = "root") {
  const response = await fetch(`${vault.address}/v1/${path}`, {
    headers: { "X-Vault-Token": token },
  });
  return { status: response.status, body: (await response.json()) as any };
}

test("KV v2 metadata lists every version with its deletion", async () => {
  const { status, body } = await get("secret/metadata/app");

  expect(status).toBe(200);
  expect(body.data.current_version).toBe(2);
  expect(Object.keys(body.data.versions)).toEqual(["1", "2"]);
  expect(body.data.versions["1"].deletion_time).toMatch(/^\d{4}-/);
  expect(body.data.versions["2"]).toMatchObject({
    deletion_time: "",
    destroyed: false,
  });
});

test("a KV v2 path without data/ is Vault's 404 with a warning", async () => {
  const { status, body } = await get("secret/app");

  expect(status).toBe(404);
  expect(body.data).toBeNull();
  expect(body.warnings[0]).toMatch(/^Invalid path for a versioned K\/V/);
});

test("the mount preflight describes the mount", async () => {
  const { status, body } = await get("sys/internal/ui/mounts/secret/app");

  expect(status).toBe(200);
  expect(body.data).toMatchObject({
    path: "secret/",
    type: "kv",
    options: { version: "2" },
  });
});

test("a missing token is 403 permission denied; health needs none", async () => {
  expect(await get("secret/data/app", "")).toEqual({
    status: 403,
    body: { errors: ["permission denied"] },
  });
  expect((await get("sys/health", "")).body).toMatchObject({
    initialized: true,
    sealed: false,
  });
});

test("faults hit the given number of requests, then stop", async () => {
  vault.requests.splice(0);
  vault.inject({
    path: "secret/data/app",
    action: { kind: "sealed" },
    times: 1,
  });
  const first = await get("secret/data/app");
  const second = await get("secret/data/app");

  expect(first).toEqual({ status: 503, body: { errors: ["Vault is sealed"] } });
  expect(second.status).toBe(200);
  expect(second.body.data.data).toEqual({ a: "2" });
  expect(vault.count("secret/data/app", "GET")).toBe(2);
});
