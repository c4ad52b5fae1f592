/**
 * `awssm:` references through the built bundle, against the local fake
 * Secrets Manager: the bundle's own SDK finds it through
 * AWS_ENDPOINT_URL_SECRETS_MANAGER, the way it would find a VPC endpoint.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { privateFolder } from "./support/scratch.ts";
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
import {
  FakeSecretsManager,
  testCredential,
  type FakeCredential,
} from "./servers/secretsmanager.ts";

let fake: FakeSecretsManager;
let dir: string;

// Every value a test stores, so that each run can prove none leaked.
let stored: string[];

beforeAll(() => {
  if (!fs.existsSync(bundle)) {
    throw new Error(`${bundle} is missing: run npm run build first`);
  }
});

beforeEach(async () => {
  fake = await FakeSecretsManager.start({
    regions: ["eu-west-1", "us-east-2"],
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "awssm-e2e-"));
  fs.chmodSync(dir, 0o777);
  stored = [];
});

afterEach(async () => {
  await fake.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

function addSecret(name: string, value: string | Buffer, region?: string) {
  stored.push(typeof value === "string" ? value : value.toString("latin1"));
  return fake.addSecret({ name, value, ...(region ? { region } : {}) });
}

/** The environment of a container on ECS, with the fake as endpoint. */
function awsEnv(
  variables: Record<string, string>,
  credential: FakeCredential = testCredential,
) {
  return baseEnv({
    AWS_REGION: "eu-west-1",
    AWS_ACCESS_KEY_ID: credential.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credential.secretAccessKey,
    ...(credential.sessionToken
      ? { AWS_SESSION_TOKEN: credential.sessionToken }
      : {}),
    AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.url,
    AWS_EC2_METADATA_DISABLED: "true",
    AWS_CONFIG_FILE: "/nonexistent/aws-config",
    AWS_SHARED_CREDENTIALS_FILE: "/nonexistent/aws-credentials",
    SECRET_ENTRYPOINT_FILES_DIR: path.join(privateFolder(dir), "files"),
    ...variables,
  });
}

/** Runs the report command under the entrypoint with `env`. */
async function run(env: Record<string, string>) {
  const { reportPath, command } = reportCommand(dir);
  const result = await runEntrypoint(["--", ...command], { env });
  expectNoLeak(result, [
    ...stored,
    testCredential.secretAccessKey,
    ...(env.AWS_SESSION_TOKEN ? [env.AWS_SESSION_TOKEN] : []),
  ]);
  // Nothing of the SDK reaches stderr on its own (console warnings): every
  // line there is one of our JSON log lines.
  const lines = result.stderr.split("\n").filter((line) => line !== "");
  expect(lines.filter((line) => !line.startsWith("{"))).toEqual([]);
  return { result, reportPath };
}

function report(reportPath: string): Report {
  return JSON.parse(fs.readFileSync(reportPath, "utf8")) as Report;
}

function errorLine(result: RunResult) {
  return logLines(result.stderr).filter((line) => line.level === 50);
}

describe("reference forms", () => {
  it("resolves every awssm reference form into the command's environment", async () => {
    addSecret("prod/app/jwt", "jwt-e2e-value");
    const db = addSecret(
      "prod/db",
      '{"username":"app","password":"pw-e2e","port":5432,"ssl":true,"nested":{"a":{"b":"deep-e2e"}}}',
    );
    fake.putVersion(db, '{"password":"pw-e2e-next"}', {
      stages: ["AWSPENDING"],
    });
    const rotated = addSecret("prod/rotated", "rotated-old");
    const current = fake.putVersion(rotated, "rotated-new");
    stored.push("rotated-new", "pw-e2e-next");
    const api = addSecret("prod/api", "api-e2e-value");
    const partial = api.arn.slice(0, -"-AbCdEf".length);

    const { result, reportPath } = await run(
      awsEnv({
        JWT: "awssm:prod/app/jwt",
        DB_PASSWORD: "awssm:prod/db#password",
        DB_PORT: "awssm:prod/db#port",
        DB_SSL: "awssm:prod/db#ssl",
        DEEP: "awssm:prod/db#/nested/a/b",
        DB_PENDING: "awssm:prod/db?version-stage=AWSPENDING#password",
        FULL_ARN: `awssm:${api.arn}`,
        PARTIAL_ARN: `awssm:${partial}`,
        ECS_KEY: `awssm:${db.arn}:username::`,
        ECS_STAGE: `awssm:${rotated.arn}::AWSPREVIOUS:`,
        ECS_ID: `awssm:${rotated.arn}:::${current.id}`,
        BY_ID: `awssm:prod/rotated?version-id=${current.id}`,
        PREVIOUS: "awssm:prod/rotated?version-stage=AWSPREVIOUS",
        URL: "postgres://app:${awssm:prod/db#password}@db:5432/app",
      }),
    );

    expect(result.code).toBe(0);
    expect(report(reportPath).env).toMatchObject({
      JWT: "jwt-e2e-value",
      DB_PASSWORD: "pw-e2e",
      DB_PORT: "5432",
      DB_SSL: "true",
      DEEP: "deep-e2e",
      DB_PENDING: "pw-e2e-next",
      FULL_ARN: "api-e2e-value",
      PARTIAL_ARN: "api-e2e-value",
      ECS_KEY: "app",
      ECS_STAGE: "rotated-old",
      ECS_ID: "rotated-new",
      BY_ID: "rotated-new",
      PREVIOUS: "rotated-old",
      URL: "postgres://app:pw-e2e@db:5432/app",
    });
    // Unpinned, one batch: prod/app/jwt, prod/db, prod/db's ARN, prod/api's
    // ARN and partial ARN (each spelling is a distinct secret id). Pinned to
    // a version: five GetSecretValue calls.
    expect(fake.count("BatchGetSecretValue")).toBe(1);
    expect(fake.count("GetSecretValue")).toBe(5);
  });

  it("puts a binary secret into a file, and text-like bytes into the environment", async () => {
    const key = Buffer.from([0x30, 0x82, 0x00, 0xff, 0x0a, 0x00]);
    addSecret("tls/key.der", key);
    addSecret("tls/token", Buffer.from("binary-but-text"));

    const { result, reportPath } = await run(
      awsEnv({
        KEY_FILE: "awssm:tls/key.der?as=file",
        TOKEN: "awssm:tls/token",
      }),
    );

    expect(result.code).toBe(0);
    const { env } = report(reportPath);
    expect(env.TOKEN).toBe("binary-but-text");
    expect(fs.readFileSync(env.KEY_FILE!)).toEqual(key);
  });

  it("takes the region from the ARN when AWS_REGION is not set", async () => {
    const secret = addSecret("prod/east", "east-e2e-value", "us-east-2");
    const env: Record<string, string> = awsEnv({ EAST: `awssm:${secret.arn}` });
    delete env.AWS_REGION;

    const { result, reportPath } = await run(env);

    expect(result.code).toBe(0);
    expect(report(reportPath).env.EAST).toBe("east-e2e-value");
    expect(fake.requests).toMatchObject([
      { action: "GetSecretValue", region: "us-east-2", status: 200 },
    ]);
  });
});

describe("single executable", () => {
  it("reads awssm references with the SDK built into dist/secret-entrypoint", async () => {
    addSecret("sea/one", "sea-value-1");
    addSecret("sea/two", '{"key":"sea-value-2"}');
    const { reportPath, command } = reportCommand(dir);

    const result = await runEntrypoint(["--", ...command], {
      sea: true,
      env: awsEnv({ ONE: "awssm:sea/one", TWO: "awssm:sea/two#key" }),
    });

    expect(result.code).toBe(0);
    expectNoLeak(result, stored);
    expect(report(reportPath).env).toMatchObject({
      ONE: "sea-value-1",
      TWO: "sea-value-2",
    });
    expect(fake.count("BatchGetSecretValue")).toBe(1);
  });
});

describe("round trips", () => {
  function addMany(count: number) {
    const variables: Record<string, string> = {};
    for (let index = 0; index < count; index++) {
      addSecret(`bulk/s${index}`, `bulk-value-${index}`);
      variables[`BULK_${index}`] = `awssm:bulk/s${index}`;
    }
    return variables;
  }

  it("reads 45 secrets of one region with 3 batch calls", async () => {
    const variables = addMany(45);

    const { result, reportPath } = await run(awsEnv(variables));

    expect(result.code).toBe(0);
    const { env } = report(reportPath);
    for (let index = 0; index < 45; index++) {
      expect(env[`BULK_${index}`]).toBe(`bulk-value-${index}`);
    }
    expect(fake.count("BatchGetSecretValue")).toBe(3);
    expect(fake.count("GetSecretValue")).toBe(0);
  });

  it("falls back to one GetSecretValue a secret when batching is denied", async () => {
    const variables = addMany(25);
    fake.denyBatch = true;

    const { result, reportPath } = await run(awsEnv(variables));

    expect(result.code).toBe(0);
    const { env } = report(reportPath);
    for (let index = 0; index < 25; index++) {
      expect(env[`BULK_${index}`]).toBe(`bulk-value-${index}`);
    }
    expect(fake.count("BatchGetSecretValue")).toBe(2);
    expect(fake.count("GetSecretValue")).toBe(25);
    const warnings = logLines(result.stderr).filter(
      (line) => line.event === "awssm.batch.denied",
    );
    expect(warnings).toEqual([
      expect.objectContaining({
        level: 40,
        region: "eu-west-1",
        msg: "BatchGetSecretValue was denied; reading each AWS secret with GetSecretValue instead",
      }),
    ]);
  });
});

interface FaultCase {
  name: string;
  setup?: () => void;
  env?: Record<string, string | undefined>;
  credential?: FakeCredential;
  reference?: string;
  code: number;
  message: string;
}

const faults: FaultCase[] = [
  {
    name: "a missing secret",
    reference: "awssm:prod/missing",
    code: 66,
    message:
      "failed to resolve DB from awssm:prod/missing: aws secret prod/missing in eu-west-1: no such secret (ResourceNotFoundException); check the name and the region",
  },
  {
    name: "a missing JSON key",
    reference: "awssm:prod/db#passwd",
    code: 66,
    message:
      'failed to resolve DB from awssm:prod/db#passwd: the secret has no key "passwd"; its keys are "password"',
  },
  {
    name: "a missing version stage",
    reference: "awssm:prod/db?version-stage=AWSPENDING#password",
    code: 66,
    message:
      "failed to resolve DB from awssm:prod/db?version-stage=AWSPENDING#password: aws secret prod/db (version stage AWSPENDING) in eu-west-1: no such secret or version (ResourceNotFoundException); check the name and the region and the version",
  },
  {
    name: "a denied secret",
    setup: () =>
      (fake.addSecret({ name: "prod/denied", value: "denied-e2e" }).denied =
        true),
    reference: "awssm:prod/denied",
    code: 77,
    message:
      "failed to resolve DB from awssm:prod/denied: aws secret prod/denied in eu-west-1: access denied (AccessDeniedException); allow secretsmanager:GetSecretValue on it for the task's role",
  },
  {
    name: "a KMS decryption failure",
    setup: () =>
      (fake.addSecret({ name: "prod/kms", value: "kms-e2e" }).undecryptable =
        true),
    reference: "awssm:prod/kms",
    code: 77,
    message:
      "failed to resolve DB from awssm:prod/kms: aws secret prod/kms in eu-west-1: Secrets Manager cannot decrypt it with its KMS key (DecryptionFailure); allow kms:Decrypt on the secret's KMS key for the task's role",
  },
  {
    name: "a secret scheduled for deletion",
    setup: () =>
      fake.scheduleDeletion(
        fake.addSecret({ name: "prod/old", value: "old-e2e" }),
      ),
    reference: "awssm:prod/old",
    code: 66,
    message:
      "failed to resolve DB from awssm:prod/old: aws secret prod/old in eu-west-1: it is scheduled for deletion (InvalidRequestException); restore it (aws secretsmanager restore-secret --secret-id prod/old) or stop referencing it",
  },
  {
    name: "an unknown access key",
    credential: { ...testCredential, accessKeyId: "AKIAUNKNOWN000000000" },
    code: 77,
    message:
      "failed to resolve DB from awssm:prod/db#password: aws secret prod/db in eu-west-1: the AWS credentials were rejected (UnrecognizedClientException); check the credentials the SDK's default chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, the task or instance role) and the clock",
  },
  {
    name: "a wrong secret access key",
    credential: {
      ...testCredential,
      secretAccessKey: "wrong-secret-access-key-0000000000000000",
    },
    code: 77,
    message:
      "failed to resolve DB from awssm:prod/db#password: aws secret prod/db in eu-west-1: the AWS credentials were rejected (InvalidSignatureException); check the credentials the SDK's default chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, the task or instance role) and the clock",
  },
  {
    name: "no region",
    env: { AWS_REGION: undefined },
    code: 78,
    message:
      "failed to resolve DB from awssm:prod/db#password: no AWS region for aws secret prod/db: set AWS_REGION (or AWS_DEFAULT_REGION), or reference the secret by its full ARN",
  },
  {
    name: "throttling that outlasts the attempts",
    setup: () => fake.failNext(100, "ThrottlingException"),
    env: { SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "2" },
    code: 69,
    message:
      "failed to resolve DB from awssm:prod/db#password: aws secret prod/db in eu-west-1: throttled after 2 attempt(s) (ThrottlingException); raise SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS or the deadline, or retry later",
  },
  {
    name: "server errors that outlast the attempts",
    setup: () => fake.failNext(100, "InternalServiceError"),
    env: { AWS_MAX_ATTEMPTS: "2" },
    code: 69,
    message:
      "failed to resolve DB from awssm:prod/db#password: aws secret prod/db in eu-west-1: Secrets Manager failed after 2 attempt(s) (InternalServiceError, HTTP 500); retry later",
  },
  {
    name: "an unreachable endpoint",
    env: {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: "http://127.0.0.1:9",
      SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "2",
    },
    code: 69,
    message:
      "failed to resolve DB from awssm:prod/db#password: aws secret prod/db in eu-west-1: Secrets Manager is unreachable after 2 attempt(s) (ECONNREFUSED); check that the container can reach the Secrets Manager endpoint (network, VPC endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER)",
  },
  {
    name: "an AWS_ENDPOINT_URL_SECRETS_MANAGER that is no URL",
    env: { AWS_ENDPOINT_URL_SECRETS_MANAGER: "not-a-url" },
    code: 78,
    message:
      "failed to resolve DB from awssm:prod/db#password: AWS_ENDPOINT_URL_SECRETS_MANAGER=not-a-url is not an endpoint URL; use an absolute http:// or https:// URL, e.g. http://localstack:4566 or https://secretsmanager.eu-west-1.amazonaws.com, or unset it",
  },
  {
    name: "an AWS_ENDPOINT_URL that is no http(s) URL",
    env: {
      AWS_ENDPOINT_URL_SECRETS_MANAGER: undefined,
      AWS_ENDPOINT_URL: "localstack:4566",
    },
    code: 78,
    message:
      "failed to resolve DB from awssm:prod/db#password: AWS_ENDPOINT_URL=localstack:4566 is not an endpoint URL; use an absolute http:// or https:// URL, e.g. http://localstack:4566 or https://secretsmanager.eu-west-1.amazonaws.com, or unset it",
  },
  {
    name: "a bad SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS",
    env: { SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "0" },
    code: 78,
    message:
      "failed to resolve DB from awssm:prod/db#password: SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS=0 is not a whole number from 1 to 99; set the attempts per call, e.g. 3, or unset it to leave them to the SDK",
  },
];

describe("faults", () => {
  it.each(faults)(
    "exits $code for $name without starting the command",
    async (fault) => {
      fake.addSecret({ name: "prod/db", value: '{"password":"fault-e2e-pw"}' });
      stored.push("fault-e2e-pw", "denied-e2e", "kms-e2e", "old-e2e");
      fault.setup?.();
      const env: Record<string, string> = awsEnv(
        { DB: fault.reference ?? "awssm:prod/db#password" },
        fault.credential,
      );
      for (const [name, value] of Object.entries(fault.env ?? {})) {
        if (value === undefined) delete env[name];
        else env[name] = value;
      }

      const { result, reportPath } = await run(env);

      expect(result.code).toBe(fault.code);
      expect(errorLine(result).map((line) => line.msg)).toEqual([
        fault.message,
      ]);
      expect(fs.existsSync(reportPath)).toBe(false);
      expect(result.stderr).not.toContain(testCredential.secretAccessKey);
    },
  );

  it("exits 69 at the deadline when Secrets Manager is slow", async () => {
    addSecret("prod/db", "slow-e2e-value");
    fake.latencyMs = 20_000;
    const started = Date.now();

    const { result, reportPath } = await run(
      awsEnv({ DB: "awssm:prod/db", SECRET_ENTRYPOINT_TIMEOUT: "1s" }),
    );

    expect(result.code).toBe(69);
    expect(errorLine(result).map((line) => line.msg)).toEqual([
      "failed to resolve DB from awssm:prod/db: the awssm provider did not answer within the deadline of 1000 ms; raise --timeout (SECRET_ENTRYPOINT_TIMEOUT) or check that the provider is reachable",
    ]);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  it("gives up a hanging attempt and retries, inside the deadline", async () => {
    addSecret("prod/db", "hang-e2e-value");
    fake.latencyMs = 20_000;
    const started = Date.now();

    const { result, reportPath } = await run(
      awsEnv({
        DB: "awssm:prod/db",
        SECRET_ENTRYPOINT_TIMEOUT: "6s",
        SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS: "2",
      }),
    );

    expect(result.code).toBe(69);
    expect(fake.count("GetSecretValue")).toBe(2);
    expect(errorLine(result).map((line) => line.msg)).toEqual([
      "failed to resolve DB from awssm:prod/db: aws secret prod/db in eu-west-1: Secrets Manager is unreachable after 2 attempt(s) (TimeoutError); check that the container can reach the Secrets Manager endpoint (network, VPC endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER)",
    ]);
    expect(Date.now() - started).toBeLessThan(6_000);
    expect(fs.existsSync(reportPath)).toBe(false);
  });

  it("leaves an optional missing secret unset and starts the command", async () => {
    addSecret("prod/db", "present-e2e");

    const { result, reportPath } = await run(
      awsEnv({ DB: "awssm:prod/db", GONE: "awssm:prod/gone?optional=true" }),
    );

    expect(result.code).toBe(0);
    const { env } = report(reportPath);
    expect(env.DB).toBe("present-e2e");
    expect(env).not.toHaveProperty("GONE");
  });
});
