/**
 * The AWS Secrets Manager provider called directly, against the local fake:
 * the real SDK finds the fake through AWS_ENDPOINT_URL_SECRETS_MANAGER, as it
 * would find a VPC endpoint.
 */
import { Writable } from "node:stream";

import pino from "pino";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { create } from "../providers/awssm.ts";
import type { ReadResult, Secret } from "../providers/types.ts";
import { EntrypointError } from "../src/errors.ts";
import { parseReference, secretIdentity } from "../src/references.ts";
import {
  FakeSecretsManager,
  testCredential,
} from "./servers/secretsmanager.ts";

let fake: FakeSecretsManager;
let logLines: Array<Record<string, unknown>>;

// The SDK reads its settings from process.env, so each test stubs it whole:
// no profile, no shared files, no instance metadata from the machine.
function stubAwsEnv(extra: Record<string, string | undefined> = {}) {
  const settings: Record<string, string | undefined> = {
    AWS_REGION: "eu-west-1",
    AWS_DEFAULT_REGION: undefined,
    AWS_ACCESS_KEY_ID: testCredential.accessKeyId,
    AWS_SECRET_ACCESS_KEY: testCredential.secretAccessKey,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: "/nonexistent/aws-config",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_ENDPOINT_URL: undefined,
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.url,
    AWS_MAX_ATTEMPTS: undefined,
    AWS_RETRY_MODE: undefined,
    SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: undefined,
    ...extra,
  };
  for (const [name, value] of Object.entries(settings)) {
    vi.stubEnv(name, value);
  }
}

function testLogger() {
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(JSON.parse(chunk.toString("utf8")));
      done();
    },
  });
  return pino({ level: "debug" }, stream);
}

interface ReadOptions {
  signal?: AbortSignal;
  provider?: ReturnType<typeof create>;
}

/** Reads `texts` (references) in one run; results keyed by reference. */
async function read(texts: string[], options: ReadOptions = {}) {
  const logger = testLogger();
  const provider =
    options.provider ??
    create({ env: process.env, logger, fileRoots: [], fileTrim: true });
  const requests = texts.map((text) => {
    const reference = parseReference(text, { fileRoots: [] })!;
    return { identity: secretIdentity(reference), reference };
  });
  const signal = options.signal ?? new AbortController().signal;
  const answers = await provider.read(requests, {
    signal,
    deadline: Date.now() + 30_000,
    logger,
  });
  const byText = new Map<string, ReadResult>();
  for (const request of requests) {
    byText.set(request.reference.text, answers.get(request.identity)!);
  }
  return byText;
}

function text(result: ReadResult | undefined): string {
  expect(result?.ok).toBe(true);
  const secret = (result as { secret: Secret }).secret;
  if (secret.kind !== "text") throw new Error(`a ${secret.kind} secret`);
  return secret.text;
}

function failure(result: ReadResult | undefined) {
  expect(result?.ok).toBe(false);
  const error = (result as { error: EntrypointError }).error;
  expect(error).toBeInstanceOf(EntrypointError);
  return { code: error.exitCode, message: error.message, cause: error.cause };
}

beforeEach(async () => {
  fake = await FakeSecretsManager.start({
    regions: ["eu-west-1", "us-east-2"],
  });
  logLines = [];
  stubAwsEnv();
});

afterEach(async () => {
  vi.unstubAllEnvs();
  await fake.close();
});

describe("reads", () => {
  it("reads names with slashes in one batch call", async () => {
    fake.addSecret({ name: "prod/app/jwt", value: "jwt-value-1" });
    fake.addSecret({ name: "prod/db", value: '{"password":"pw-1"}' });

    const results = await read([
      "awssm:prod/app/jwt",
      "awssm:prod/db#password",
    ]);

    expect(text(results.get("awssm:prod/app/jwt"))).toBe("jwt-value-1");
    expect(text(results.get("awssm:prod/db#password"))).toBe(
      '{"password":"pw-1"}',
    );
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.count("GetSecretValue")).toBe(0);
    expect(fake.requests[0]).toMatchObject({
      region: "eu-west-1",
      accessKeyId: testCredential.accessKeyId,
      secretIds: ["prod/app/jwt", "prod/db"],
      status: 200,
    });
  });

  it("reads a secret alone in its region with GetSecretValue", async () => {
    fake.addSecret({ name: "prod/app/jwt", value: "jwt-value-1" });

    const results = await read(["awssm:prod/app/jwt"]);

    expect(text(results.get("awssm:prod/app/jwt"))).toBe("jwt-value-1");
    expect(fake.count("GetSecretValue")).toBe(1);
    expect(fake.count("BatchGetSecretValue")).toBe(0);
  });

  it("reads full, partial and ECS valueFrom ARNs in their own region", async () => {
    stubAwsEnv({ AWS_REGION: undefined });
    const db = fake.addSecret({
      name: "prod/db",
      value: '{"password":"pw-2"}',
      region: "us-east-2",
    });
    const api = fake.addSecret({
      name: "prod/api",
      value: "api-2",
      region: "us-east-2",
    });
    const jwt = fake.addSecret({
      name: "prod/jwt",
      value: "jwt-2",
      region: "us-east-2",
    });
    const partial = api.arn.slice(0, -7);
    const references = [
      `awssm:${db.arn}:password::`,
      `awssm:${partial}`,
      `awssm:${jwt.arn}`,
    ];

    const results = await read(references);

    expect(text(results.get(references[0]!))).toBe('{"password":"pw-2"}');
    expect(text(results.get(references[1]!))).toBe("api-2");
    expect(text(results.get(references[2]!))).toBe("jwt-2");
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.requests[0]?.region).toBe("us-east-2");
  });

  it("reads pinned versions with GetSecretValue, one call each", async () => {
    const db = fake.addSecret({
      name: "prod/db",
      value: "v1",
      versionId: "11111111-1111-4111-8111-111111111111",
    });
    fake.putVersion(db, "v2");
    fake.putVersion(db, "v3-custom", { stages: ["BLUE"] });
    const references = [
      "awssm:prod/db",
      "awssm:prod/db?version-stage=AWSPREVIOUS",
      "awssm:prod/db?version-stage=BLUE",
      "awssm:prod/db?version-id=11111111-1111-4111-8111-111111111111",
      `awssm:${db.arn}::AWSPREVIOUS:`,
    ];

    const results = await read(references);

    expect(references.map((reference) => text(results.get(reference)))).toEqual(
      ["v2", "v1", "v3-custom", "v1", "v1"],
    );
    expect(fake.count("GetSecretValue")).toBe(5);
    expect(fake.count("BatchGetSecretValue")).toBe(0);
  });

  it("returns SecretBinary as bytes, from a batch and alone", async () => {
    const bytes = Buffer.from([0x00, 0xff, 0x10, 0x80, 0x0a]);
    fake.addSecret({ name: "tls/key", value: bytes });
    fake.addSecret({ name: "tls/crt", value: "PEM" });

    const batched = await read(["awssm:tls/key", "awssm:tls/crt"]);
    const alone = await read(["awssm:tls/key?encoding=base64"]);

    for (const result of [
      batched.get("awssm:tls/key"),
      alone.get("awssm:tls/key?encoding=base64"),
    ]) {
      expect(result).toEqual({ ok: true, secret: { kind: "bytes", bytes } });
    }
  });

  it("reads 45 secrets of one region with 3 batch calls", async () => {
    const names = Array.from(
      { length: 45 },
      (_, index) => `bulk/secret-${index}`,
    );
    for (const name of names)
      fake.addSecret({ name, value: `value-of-${name}` });

    const results = await read(names.map((name) => `awssm:${name}`));

    for (const name of names) {
      expect(text(results.get(`awssm:${name}`))).toBe(`value-of-${name}`);
    }
    expect(fake.count("BatchGetSecretValue")).toBe(3);
    expect(fake.count("GetSecretValue")).toBe(0);
    expect(
      fake.requests.map((request) => request.secretIds.length).sort(),
    ).toEqual([20, 20, 5]);
  });
});

describe("batch fallback", () => {
  it("reads each secret alone when the batch call is denied, and says so once", async () => {
    fake.denyBatch = true;
    const names = Array.from(
      { length: 25 },
      (_, index) => `fallback/s${index}`,
    );
    for (const name of names)
      fake.addSecret({ name, value: `value-of-${name}` });
    const provider = create({
      env: process.env,
      logger: testLogger(),
      fileRoots: [],
      fileTrim: true,
    });

    const results = await read(
      names.map((name) => `awssm:${name}`),
      { provider },
    );

    for (const name of names) {
      expect(text(results.get(`awssm:${name}`))).toBe(`value-of-${name}`);
    }
    expect(fake.count("BatchGetSecretValue")).toBe(2);
    expect(fake.count("GetSecretValue")).toBe(25);
    const warnings = logLines.filter(
      (line) => line.event === "awssm.batch.denied",
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        provider: "awssm",
        region: "eu-west-1",
        msg: "BatchGetSecretValue was denied; reading each AWS secret with GetSecretValue instead",
      }),
    ]);

    // A later read of the same provider (a refresh) does not try again.
    await read(
      names.slice(0, 3).map((name) => `awssm:${name}`),
      { provider },
    );
    expect(fake.count("BatchGetSecretValue")).toBe(2);
    expect(fake.count("GetSecretValue")).toBe(28);
  });
});

describe("per-secret errors", () => {
  function addFaultySecrets() {
    fake.addSecret({ name: "ok/one", value: "fine-value" });
    fake.addSecret({ name: "bad/denied", value: "denied-value" }).denied = true;
    fake.addSecret({ name: "bad/kms", value: "kms-value" }).undecryptable =
      true;
    fake.scheduleDeletion(
      fake.addSecret({ name: "bad/deleted", value: "deleted-value" }),
    );
  }

  const expected = {
    "awssm:bad/missing": [
      66,
      "aws secret bad/missing in eu-west-1: no such secret (ResourceNotFoundException); check the name and the region",
    ],
    "awssm:bad/denied": [
      77,
      "aws secret bad/denied in eu-west-1: access denied (AccessDeniedException); allow secretsmanager:GetSecretValue on it for the task's role",
    ],
    "awssm:bad/kms": [
      77,
      "aws secret bad/kms in eu-west-1: Secrets Manager cannot decrypt it with its KMS key (DecryptionFailure); allow kms:Decrypt on the secret's KMS key for the task's role",
    ],
    "awssm:bad/deleted": [
      66,
      "aws secret bad/deleted in eu-west-1: it is scheduled for deletion (InvalidRequestException); restore it (aws secretsmanager restore-secret --secret-id bad/deleted) or stop referencing it",
    ],
  } as const;

  it("reports each failed secret of a batch answer on its own", async () => {
    addFaultySecrets();

    const results = await read(["awssm:ok/one", ...Object.keys(expected)]);

    expect(text(results.get("awssm:ok/one"))).toBe("fine-value");
    for (const [reference, [code, message]] of Object.entries(expected)) {
      const { cause, ...rest } = failure(results.get(reference));
      expect(rest).toEqual({ code, message });
      expect((cause as Error).message).toBe(
        "BatchGetSecretValue: listed in the answer's Errors",
      );
    }
    expect(
      Object.keys(expected).map(
        (reference) => (failure(results.get(reference)).cause as Error).name,
      ),
    ).toEqual([
      "ResourceNotFoundException",
      "AccessDeniedException",
      "DecryptionFailure",
      "InvalidRequestException",
    ]);
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.count("GetSecretValue")).toBe(0);
  });

  it("reports the same errors from GetSecretValue", async () => {
    addFaultySecrets();

    for (const [reference, [code, message]] of Object.entries(expected)) {
      const results = await read([reference]);
      const { cause, ...rest } = failure(results.get(reference));
      expect(rest).toEqual({ code, message });
      // The cause keeps the error's name and status, nothing of the response.
      expect(cause).toBeInstanceOf(Error);
      expect((cause as Error).message).toBe(
        "GetSecretValue: HTTP 400, 1 attempt(s)",
      );
    }
    expect(fake.count("GetSecretValue")).toBe(4);
  });

  it("names the version when a pinned version is missing", async () => {
    fake.addSecret({ name: "prod/db", value: "v1" });

    const results = await read(["awssm:prod/db?version-stage=AWSPENDING"]);

    expect(
      failure(results.get("awssm:prod/db?version-stage=AWSPENDING")),
    ).toMatchObject({
      code: 66,
      message:
        "aws secret prod/db (version stage AWSPENDING) in eu-west-1: no such secret or version (ResourceNotFoundException); check the name and the region and the version",
    });
  });
});

describe("region", () => {
  it("fails the whole read with exit 78 when no region is set", async () => {
    stubAwsEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined });

    const reading = read(["awssm:prod/db"]);

    await expect(reading).rejects.toThrow(
      "no AWS region for aws secret prod/db: set AWS_REGION (or AWS_DEFAULT_REGION), or reference the secret by its full ARN",
    );
    await expect(reading).rejects.toMatchObject({ exitCode: 78 });
    expect(fake.requests).toEqual([]);
  });

  it("fails only the names when ARNs name their region", async () => {
    stubAwsEnv({ AWS_REGION: undefined });
    const api = fake.addSecret({
      name: "prod/api",
      value: "api-3",
      region: "us-east-2",
    });

    const results = await read([`awssm:${api.arn}`, "awssm:prod/db"]);

    expect(text(results.get(`awssm:${api.arn}`))).toBe("api-3");
    expect(failure(results.get("awssm:prod/db")).code).toBe(78);
  });

  it("falls back to AWS_DEFAULT_REGION", async () => {
    stubAwsEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: "us-east-2" });
    fake.addSecret({ name: "prod/db", value: "east", region: "us-east-2" });

    const results = await read(["awssm:prod/db"]);

    expect(text(results.get("awssm:prod/db"))).toBe("east");
  });
});

describe("faults", () => {
  it("retries throttled calls and then succeeds", async () => {
    fake.addSecret({ name: "prod/db", value: "after-throttle" });
    fake.failNext(1, "ThrottlingException");

    const results = await read(["awssm:prod/db"]);

    expect(text(results.get("awssm:prod/db"))).toBe("after-throttle");
    expect(fake.requests.map((request) => request.status)).toEqual([400, 200]);
  });

  it("fails with 69 once throttling outlasts the attempts", async () => {
    stubAwsEnv({ SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "2" });
    fake.addSecret({ name: "prod/db", value: "x" });
    fake.addSecret({ name: "prod/api", value: "y" });
    fake.failNext(100, "ThrottlingException");

    const results = await read(["awssm:prod/db", "awssm:prod/api"]);

    expect(failure(results.get("awssm:prod/api"))).toMatchObject({
      code: 69,
      message:
        "aws secret prod/api in eu-west-1: throttled after 2 attempt(s) (ThrottlingException); raise SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS or the deadline, or retry later",
    });
    expect(fake.count("BatchGetSecretValue")).toBe(2);
  });

  it("takes AWS_MAX_ATTEMPTS when ours is not set", async () => {
    stubAwsEnv({ AWS_MAX_ATTEMPTS: "1" });
    fake.addSecret({ name: "prod/db", value: "x" });
    fake.failNext(1, "InternalServiceError");

    const results = await read(["awssm:prod/db"]);

    expect(failure(results.get("awssm:prod/db"))).toMatchObject({
      code: 69,
      message:
        "aws secret prod/db in eu-west-1: Secrets Manager failed after 1 attempt(s) (InternalServiceError, HTTP 500); retry later",
    });
    expect(fake.count("GetSecretValue")).toBe(1);
  });

  it.each(["many", "0", "100", "-1", "1.5", " 3"])(
    "rejects SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS=%j with exit 78",
    (raw) => {
      stubAwsEnv({ SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: raw });

      expect(() =>
        create({
          env: process.env,
          logger: testLogger(),
          fileRoots: [],
          fileTrim: true,
        }),
      ).toThrow(
        expect.objectContaining({
          exitCode: 78,
          message: `SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS=${raw} is not a whole number from 1 to 99; set the attempts per call, e.g. 3, or unset it to leave them to the SDK`,
        }),
      );
    },
  );

  it.each([
    [
      "an unknown access key",
      { AWS_ACCESS_KEY_ID: "AKIAUNKNOWN000000000" },
      "the AWS credentials were rejected (UnrecognizedClientException); check the credentials the SDK's default chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, the task or instance role) and the clock",
    ],
    [
      "a wrong secret key",
      { AWS_SECRET_ACCESS_KEY: "wrong-secret-access-key-0000000000000000" },
      "the AWS credentials were rejected (InvalidSignatureException); check the credentials the SDK's default chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, the task or instance role) and the clock",
    ],
    [
      "no credentials at all",
      { AWS_ACCESS_KEY_ID: undefined, AWS_SECRET_ACCESS_KEY: undefined },
      "no AWS credentials found (CredentialsProviderError); give the container a role (ECS task role, EKS service account, instance profile) or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    ],
  ])("fails with 77 for %s", async (_, env, why) => {
    stubAwsEnv(env);
    fake.addSecret({ name: "prod/db", value: "x" });

    const results = await read(["awssm:prod/db"]);

    expect(failure(results.get("awssm:prod/db"))).toMatchObject({
      code: 77,
      message: `aws secret prod/db in eu-west-1: ${why}`,
    });
  });

  it("fails with 77 for expired credentials", async () => {
    await fake.close();
    fake = await FakeSecretsManager.start({
      credentials: [
        { ...testCredential, sessionToken: "session-token-1", expired: true },
      ],
    });
    stubAwsEnv({ AWS_SESSION_TOKEN: "session-token-1" });

    const results = await read(["awssm:prod/db"]);

    expect(failure(results.get("awssm:prod/db"))).toMatchObject({
      code: 77,
      message:
        "aws secret prod/db in eu-west-1: the AWS credentials have expired (ExpiredTokenException); refresh them, or let the SDK's default chain fetch the role's credentials",
    });
  });

  it("fails with 69 when the endpoint cannot be reached", async () => {
    const url = fake.url;
    await fake.close();
    stubAwsEnv({
      AWS_ENDPOINT_URL_SECRETS_MANAGER: url,
      SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "2",
    });
    fake = await FakeSecretsManager.start();

    const results = await read(["awssm:prod/db"]);

    expect(failure(results.get("awssm:prod/db"))).toMatchObject({
      code: 69,
      message:
        "aws secret prod/db in eu-west-1: Secrets Manager is unreachable after 2 attempt(s) (ECONNREFUSED); check that the container can reach the Secrets Manager endpoint (network, VPC endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER)",
    });
  });

  it("takes AWS_ENDPOINT_URL when the service's own is not set", async () => {
    stubAwsEnv({
      AWS_ENDPOINT_URL_SECRETS_MANAGER: undefined,
      AWS_ENDPOINT_URL: fake.url,
    });
    fake.addSecret({ name: "prod/db", value: "through-generic-endpoint" });

    const results = await read(["awssm:prod/db"]);

    expect(text(results.get("awssm:prod/db"))).toBe("through-generic-endpoint");
  });

  it("stops at the deadline with 69", async () => {
    fake.addSecret({ name: "prod/db", value: "slow" });
    fake.latencyMs = 10_000;
    const started = Date.now();

    const results = await read(["awssm:prod/db"], {
      signal: AbortSignal.timeout(300),
    });

    expect(failure(results.get("awssm:prod/db"))).toMatchObject({
      code: 69,
      message:
        "aws secret prod/db in eu-west-1: the deadline passed before Secrets Manager answered (AbortError)",
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });
});

describe("secrecy", () => {
  it("keeps values and credentials out of every error and its cause", async () => {
    await fake.close();
    fake = await FakeSecretsManager.start({
      credentials: [{ ...testCredential, sessionToken: "leak-canary-token" }],
    });
    stubAwsEnv({ AWS_SESSION_TOKEN: "leak-canary-token" });
    fake.addSecret({ name: "ok/one", value: "leak-canary-value" }).denied =
      true;
    fake.addSecret({ name: "ok/two", value: "leak-canary-two" }).undecryptable =
      true;

    const results = await read(["awssm:ok/one", "awssm:ok/two"]);

    const errors = [...results.values()].map((result) => {
      const { message, cause } = failure(result);
      return `${message} ${(cause as Error).name} ${(cause as Error).message} ${(cause as Error).stack}`;
    });
    const printed = errors.join("\n") + JSON.stringify(logLines);
    for (const canary of [
      "leak-canary",
      testCredential.secretAccessKey,
      testCredential.accessKeyId,
    ]) {
      expect(printed).not.toContain(canary);
    }
  });
});
