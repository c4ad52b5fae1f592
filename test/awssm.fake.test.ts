/**
 * The fake Secrets Manager itself: the parts of the protocol the provider
 * tests do not reach (refusals of malformed requests, version stage moves),
 * checked with the real SDK client and with raw HTTP.
 */
import {
  BatchGetSecretValueCommand,
  GetSecretValueCommand,
  SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

import {
  FakeSecretsManager,
  testCredential,
} from "./servers/secretsmanager.ts";

let fake: FakeSecretsManager;

beforeEach(async () => {
  fake = await FakeSecretsManager.start();
});

afterEach(async () => {
  await fake.close();
});

function client(region = "eu-west-1") {
  return new SecretsManagerClient({
    region,
    endpoint: fake.url,
    credentials: testCredential,
    maxAttempts: 1,
  });
}

async function post(headers: Record<string, string>, body: unknown) {
  const response = await fetch(fake.url, {
    method: "POST",
    headers: {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "secretsmanager.GetSecretValue",
      ...headers,
    },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

describe("authentication", () => {
  it("refuses a request without a signature", async () => {
    const answer = await post({}, { SecretId: "prod/db" });

    expect(answer).toEqual({
      status: 400,
      body: {
        __type: "MissingAuthenticationTokenException",
        message: "Missing Authentication Token",
      },
    });
  });

  it("refuses a signature scoped to another service", async () => {
    const authorization = `AWS4-HMAC-SHA256 Credential=${testCredential.accessKeyId}/20250101/eu-west-1/ssm/aws4_request, SignedHeaders=host;x-amz-date, Signature=${"0".repeat(64)}`;

    const answer = await post({ authorization }, { SecretId: "prod/db" });

    expect(answer).toEqual({
      status: 400,
      body: {
        __type: "InvalidSignatureException",
        message:
          "Credential should be scoped to correct service: 'secretsmanager'.",
      },
    });
  });

  it("refuses a signature scoped to a region it does not serve", async () => {
    const reading = client("ap-south-1").send(
      new GetSecretValueCommand({ SecretId: "prod/db" }),
    );

    await expect(reading).rejects.toMatchObject({
      name: "InvalidSignatureException",
      message:
        "Credential should be scoped to a valid region, not 'ap-south-1'.",
      $metadata: { httpStatusCode: 400 },
    });
  });

  it("refuses a body changed after signing", async () => {
    const sdk = client();
    sdk.middlewareStack.add(
      // Deserialize wraps the sending itself: the request is signed by now.
      (next) => async (args) => {
        const request = args.request as { body: string };
        request.body = request.body.replace("prod/db", "prod/xx");
        return next(args);
      },
      { step: "deserialize", name: "tamper" },
    );

    const reading = sdk.send(
      new GetSecretValueCommand({ SecretId: "prod/db" }),
    );

    await expect(reading).rejects.toMatchObject({
      name: "InvalidSignatureException",
    });
  });
});

describe("BatchGetSecretValue", () => {
  it("refuses more than 20 ids", async () => {
    const ids = Array.from({ length: 21 }, (_, index) => `s${index}`);

    const reading = client().send(
      new BatchGetSecretValueCommand({ SecretIdList: ids }),
    );

    await expect(reading).rejects.toMatchObject({
      name: "ValidationException",
      $metadata: { httpStatusCode: 400 },
    });
    expect(fake.requests).toMatchObject([
      { action: "BatchGetSecretValue", status: 400, secretIds: ids },
    ]);
  });

  it("answers found secrets and lists the others in Errors", async () => {
    const secret = fake.addSecret({ name: "prod/db", value: "db-value" });

    const output = await client().send(
      new BatchGetSecretValueCommand({
        SecretIdList: [secret.arn.slice(0, -7), "prod/none"],
      }),
    );

    expect(output.SecretValues).toMatchObject([
      {
        ARN: secret.arn,
        Name: "prod/db",
        SecretString: "db-value",
        VersionStages: ["AWSCURRENT"],
      },
    ]);
    expect(output.Errors).toEqual([
      {
        SecretId: "prod/none",
        ErrorCode: "ResourceNotFoundException",
        Message: "Secrets Manager can't find the specified secret.",
      },
    ]);
  });
});

describe("versions", () => {
  it("moves AWSCURRENT and AWSPREVIOUS as PutSecretValue does", async () => {
    const secret = fake.addSecret({ name: "prod/db", value: "one" });
    const first = secret.versions[0]!;
    const second = fake.putVersion(secret, "two");
    const third = fake.putVersion(secret, "three");

    expect(secret.versions.map((version) => version.stages)).toEqual([
      [],
      ["AWSPREVIOUS"],
      ["AWSCURRENT"],
    ]);
    const previous = await client().send(
      new GetSecretValueCommand({
        SecretId: "prod/db",
        VersionStage: "AWSPREVIOUS",
      }),
    );
    expect(previous).toMatchObject({
      SecretString: "two",
      VersionId: second.id,
    });
    const byId = await client().send(
      new GetSecretValueCommand({ SecretId: secret.arn, VersionId: first.id }),
    );
    expect(byId).toMatchObject({ SecretString: "one", VersionStages: [] });
    expect(third.stages).toEqual(["AWSCURRENT"]);
  });
});
