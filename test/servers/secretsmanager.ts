/**
 * A local AWS Secrets Manager for the tests. It speaks the JSON 1.1 protocol
 * as AWS documents it (POST /, `X-Amz-Target`, SigV4 `Authorization`, error
 * bodies with `__type`), so the real SDK in the bundle talks to it unchanged
 * through AWS_ENDPOINT_URL_SECRETS_MANAGER.
 *
 * It holds secrets per region (account 123456789012), checks the signature
 * of every request, answers GetSecretValue and BatchGetSecretValue, and lets
 * a test add latency, throttle, deny the batch call and count requests.
 */
import { createHash, createHmac, randomBytes, randomUUID } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export const account = "123456789012";

/** The credential the tests sign with unless they add others. */
export const testCredential: FakeCredential = {
  accessKeyId: "AKIAFAKEENTRYPOINT01",
  secretAccessKey: "fake-secret-access-key/DoNotLeakMe0123456789",
};

export interface FakeCredential {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** Every request signed with it fails with ExpiredTokenException. */
  expired?: boolean;
}

export interface FakeVersion {
  id: string;
  stages: string[];
  string?: string;
  binary?: Buffer;
  created: number;
}

export interface FakeSecret {
  name: string;
  region: string;
  arn: string;
  versions: FakeVersion[];
  /** Set by scheduleDeletion: reads fail as AWS fails them. */
  deletionDate?: number;
  /** Reads fail with DecryptionFailure, as when KMS refuses the key. */
  undecryptable?: boolean;
  /** The caller may not read this secret (AccessDeniedException). */
  denied?: boolean;
}

export interface NewSecret {
  name: string;
  /** A string becomes SecretString, a Buffer SecretBinary. */
  value: string | Buffer;
  region?: string;
  versionId?: string;
}

/** One request as the fake saw it. */
export interface RecordedRequest {
  action: string;
  region: string;
  accessKeyId: string;
  secretIds: string[];
  status: number;
}

export interface FakeOptions {
  /** Regions the fake serves; the first is the default for addSecret. */
  regions?: string[];
  credentials?: FakeCredential[];
}

/** An AWS error: its `__type`, HTTP status and message. */
class AwsError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Injected {
  remaining: number;
  error: AwsError;
}

type Body = Record<string, unknown>;

/** A running fake; `url` goes into AWS_ENDPOINT_URL_SECRETS_MANAGER. */
export class FakeSecretsManager {
  readonly requests: RecordedRequest[] = [];
  /** Milliseconds to wait before each answer. */
  latencyMs = 0;
  /** Answers BatchGetSecretValue with AccessDeniedException. */
  denyBatch = false;

  private readonly secrets: FakeSecret[] = [];
  private readonly regions: string[];
  private readonly credentials: FakeCredential[];
  private readonly injected: Injected[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private address = "";

  private constructor(
    private readonly server: http.Server,
    options: FakeOptions,
  ) {
    this.regions = options.regions ?? ["eu-west-1"];
    this.credentials = options.credentials ?? [testCredential];
  }

  /** Starts a fake on 127.0.0.1 on a random port. */
  static async start(options: FakeOptions = {}): Promise<FakeSecretsManager> {
    const server = http.createServer();
    const fake = new FakeSecretsManager(server, options);
    server.on("request", (request, response) => {
      void fake.handle(request, response);
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve),
    );
    const { port } = server.address() as AddressInfo;
    fake.address = `http://127.0.0.1:${port}`;
    return fake;
  }

  /** Kept after close, so a test can aim at a port nothing listens on. */
  get url(): string {
    return this.address;
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearTimeout(timer);
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  /** Adds a secret with one version labelled AWSCURRENT. */
  addSecret(spec: NewSecret): FakeSecret {
    const region = spec.region ?? this.regions[0]!;
    const suffix = randomSuffix();
    const secret: FakeSecret = {
      name: spec.name,
      region,
      arn: `arn:aws:secretsmanager:${region}:${account}:secret:${spec.name}-${suffix}`,
      versions: [],
    };
    this.secrets.push(secret);
    this.putVersion(secret, spec.value, {
      ...(spec.versionId ? { id: spec.versionId } : {}),
    });
    return secret;
  }

  /**
   * Adds a version. By default it becomes AWSCURRENT and the old current
   * version AWSPREVIOUS, as PutSecretValue does; `stages` labels it instead
   * (a custom stage, or AWSPENDING during a rotation).
   */
  putVersion(
    secret: FakeSecret,
    value: string | Buffer,
    options: { id?: string; stages?: string[] } = {},
  ): FakeVersion {
    const stages = options.stages ?? ["AWSCURRENT"];
    if (stages.includes("AWSCURRENT")) {
      for (const version of secret.versions) moveCurrentToPrevious(version);
    }
    for (const version of secret.versions) {
      version.stages = version.stages.filter(
        (stage) => stage === "AWSPREVIOUS" || !stages.includes(stage),
      );
    }
    const version: FakeVersion = {
      id: options.id ?? randomUUID(),
      stages,
      created: Math.floor(Date.now() / 1000),
      ...(typeof value === "string" ? { string: value } : { binary: value }),
    };
    secret.versions.push(version);
    return version;
  }

  /** Marks the secret for deletion, as DeleteSecret with a recovery window. */
  scheduleDeletion(secret: FakeSecret): void {
    secret.deletionDate = Math.floor(Date.now() / 1000) + 7 * 86_400;
  }

  /** The next `count` requests (of `action`, if given) fail with `type`. */
  failNext(
    count: number,
    type = "ThrottlingException",
    options: { status?: number; message?: string } = {},
  ): void {
    const status =
      options.status ?? (type === "InternalServiceError" ? 500 : 400);
    const message =
      options.message ??
      (type === "ThrottlingException" ? "Rate exceeded" : type);
    this.injected.push({
      remaining: count,
      error: new AwsError(type, status, message),
    });
  }

  /** How many requests of `action` arrived (every answer counts). */
  count(action: "GetSecretValue" | "BatchGetSecretValue"): number {
    return this.requests.filter((request) => request.action === action).length;
  }

  private async handle(
    request: http.IncomingMessage,
    response: http.ServerResponse,
  ): Promise<void> {
    const rawBody = await readBody(request);
    const record: RecordedRequest = {
      action: targetAction(request),
      region: "",
      accessKeyId: "",
      secretIds: [],
      status: 200,
    };
    let status = 200;
    let payload: Body;
    try {
      payload = this.answer(request, rawBody, record);
    } catch (error) {
      // A fault of the fake itself is answered as AWS answers its own.
      const failure =
        error instanceof AwsError
          ? error
          : new AwsError("InternalServiceError", 500, String(error));
      status = failure.status;
      payload = { __type: failure.type, message: failure.message };
    }
    record.status = status;
    this.requests.push(record);
    await this.delay();
    send(response, status, payload);
  }

  private answer(
    request: http.IncomingMessage,
    rawBody: Buffer,
    record: RecordedRequest,
  ): Body {
    if (request.method !== "POST" || request.url !== "/") {
      throw new AwsError(
        "UnknownOperationException",
        404,
        "only POST / is served",
      );
    }
    const scope = this.authenticate(request, rawBody);
    record.region = scope.region;
    record.accessKeyId = scope.accessKeyId;
    if (request.headers["content-type"] !== "application/x-amz-json-1.1") {
      throw new AwsError(
        "SerializationException",
        400,
        "expected Content-Type application/x-amz-json-1.1",
      );
    }
    const body = parseBody(rawBody);
    record.secretIds = requestedIds(body);
    this.injectFault();

    switch (record.action) {
      case "GetSecretValue":
        return this.getSecretValue(scope.region, body);
      case "BatchGetSecretValue":
        return this.batchGetSecretValue(scope.region, body);
      default:
        throw new AwsError(
          "UnknownOperationException",
          400,
          `the fake does not serve ${record.action}`,
        );
    }
  }

  private injectFault(): void {
    const next = this.injected.find((fault) => fault.remaining > 0);
    if (next === undefined) return;

    next.remaining -= 1;
    throw next.error;
  }

  /**
   * Checks the SigV4 Authorization header: scope (service, region), the
   * access key, the session token, and the signature itself, recomputed
   * here with node:crypto rather than the SDK's signer so that a fault of
   * the signer would show.
   */
  private authenticate(request: http.IncomingMessage, rawBody: Buffer) {
    const header = request.headers.authorization;
    if (header === undefined) {
      throw new AwsError(
        "MissingAuthenticationTokenException",
        400,
        "Missing Authentication Token",
      );
    }
    const parsed = parseAuthorization(header);
    const [accessKeyId, date, region, service, terminal] =
      parsed.credential.split("/");
    if (!accessKeyId || !date || !region || terminal !== "aws4_request") {
      throw new AwsError(
        "IncompleteSignatureException",
        400,
        "Malformed credential scope",
      );
    }
    if (service !== "secretsmanager") {
      throw new AwsError(
        "InvalidSignatureException",
        400,
        "Credential should be scoped to correct service: 'secretsmanager'.",
      );
    }
    if (!this.regions.includes(region)) {
      throw new AwsError(
        "InvalidSignatureException",
        400,
        `Credential should be scoped to a valid region, not '${region}'.`,
      );
    }
    const credential = this.credentials.find(
      (known) => known.accessKeyId === accessKeyId,
    );
    const token = request.headers["x-amz-security-token"];
    if (credential === undefined || token !== credential.sessionToken) {
      throw new AwsError(
        "UnrecognizedClientException",
        400,
        "The security token included in the request is invalid.",
      );
    }
    if (credential.expired) {
      throw new AwsError(
        "ExpiredTokenException",
        400,
        "The security token included in the request is expired",
      );
    }
    const expected = signature(
      request,
      rawBody,
      parsed,
      credential.secretAccessKey,
    );
    if (expected !== parsed.signature) {
      throw new AwsError(
        "InvalidSignatureException",
        400,
        "The request signature we calculated does not match the signature you provided.",
      );
    }
    return { accessKeyId, region };
  }

  private getSecretValue(region: string, body: Body): Body {
    const secretId = stringField(body, "SecretId");
    const secret = this.readable(region, secretId);
    const version = pickVersion(
      secret,
      optionalString(body, "VersionStage"),
      optionalString(body, "VersionId"),
    );
    return versionBody(secret, version);
  }

  private batchGetSecretValue(region: string, body: Body): Body {
    if (this.denyBatch) {
      throw new AwsError(
        "AccessDeniedException",
        400,
        `User: arn:aws:iam::${account}:user/test is not authorized to perform: secretsmanager:BatchGetSecretValue because no identity-based policy allows the secretsmanager:BatchGetSecretValue action`,
      );
    }
    if (body.Filters !== undefined) {
      throw new AwsError(
        "InvalidRequestException",
        400,
        "the fake does not implement Filters",
      );
    }
    const ids = body.SecretIdList;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > 20) {
      throw new AwsError(
        "ValidationException",
        400,
        "1 validation error detected: Value at 'secretIdList' failed to satisfy constraint: Member must have length between 1 and 20",
      );
    }
    const SecretValues: Body[] = [];
    const Errors: Body[] = [];
    for (const id of ids as unknown[]) {
      if (typeof id !== "string")
        throw invalidParameter("SecretIdList holds a non-string");
      try {
        const secret = this.readable(region, id);
        SecretValues.push(
          versionBody(secret, pickVersion(secret, undefined, undefined)),
        );
      } catch (error) {
        if (!(error instanceof AwsError)) throw error;
        Errors.push({
          SecretId: id,
          ErrorCode: error.type,
          Message: error.message,
        });
      }
    }
    return { SecretValues, Errors };
  }

  /** Finds a secret the caller may read, or throws the error AWS gives. */
  private readable(region: string, secretId: string): FakeSecret {
    const secret = this.secrets.find(
      (candidate) =>
        candidate.region === region && identifies(candidate, secretId),
    );
    if (secret === undefined) {
      throw new AwsError(
        "ResourceNotFoundException",
        400,
        "Secrets Manager can't find the specified secret.",
      );
    }
    if (secret.denied) {
      throw new AwsError(
        "AccessDeniedException",
        400,
        `User: arn:aws:iam::${account}:user/test is not authorized to perform: secretsmanager:GetSecretValue on resource: ${secretId} because no identity-based policy allows the secretsmanager:GetSecretValue action`,
      );
    }
    if (secret.deletionDate !== undefined) {
      throw new AwsError(
        "InvalidRequestException",
        400,
        "You can't perform this operation on the secret because it was marked for deletion.",
      );
    }
    if (secret.undecryptable) {
      throw new AwsError(
        "DecryptionFailure",
        400,
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
      );
    }
    return secret;
  }

  private delay(): Promise<void> {
    if (this.latencyMs === 0) return Promise.resolve();

    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, this.latencyMs);
      this.timers.add(timer);
    });
  }
}

// AWS appends a hyphen and six random characters to a secret's name in its ARN.
function randomSuffix(): string {
  const letters =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  return [...randomBytes(6)]
    .map((byte) => letters[byte % letters.length])
    .join("");
}

function moveCurrentToPrevious(version: FakeVersion): void {
  const wasCurrent = version.stages.includes("AWSCURRENT");
  version.stages = version.stages.filter(
    (stage) => stage !== "AWSCURRENT" && stage !== "AWSPREVIOUS",
  );
  if (wasCurrent) version.stages.push("AWSPREVIOUS");
}

/** By name, by full ARN, or by partial ARN (the ARN without its suffix). */
function identifies(secret: FakeSecret, secretId: string): boolean {
  return (
    secretId === secret.name ||
    secretId === secret.arn ||
    secretId === secret.arn.slice(0, -"-AbCdEf".length)
  );
}

// GetSecretValue: VersionStage defaults to AWSCURRENT; a VersionId and a
// VersionStage given together must name the same version.
function pickVersion(
  secret: FakeSecret,
  stage: string | undefined,
  id: string | undefined,
): FakeVersion {
  if (id !== undefined) {
    const version = secret.versions.find((candidate) => candidate.id === id);
    if (
      version === undefined ||
      (stage !== undefined && !version.stages.includes(stage))
    ) {
      throw new AwsError(
        "ResourceNotFoundException",
        400,
        `Secrets Manager can't find the specified secret value for VersionId: ${id}`,
      );
    }
    return version;
  }
  const label = stage ?? "AWSCURRENT";
  const version = secret.versions.find((candidate) =>
    candidate.stages.includes(label),
  );
  if (version === undefined) {
    throw new AwsError(
      "ResourceNotFoundException",
      400,
      `Secrets Manager can't find the specified secret value for staging label: ${label}`,
    );
  }
  return version;
}

function versionBody(secret: FakeSecret, version: FakeVersion): Body {
  return {
    ARN: secret.arn,
    Name: secret.name,
    VersionId: version.id,
    VersionStages: version.stages,
    CreatedDate: version.created,
    ...(version.string !== undefined ? { SecretString: version.string } : {}),
    ...(version.binary !== undefined
      ? { SecretBinary: version.binary.toString("base64") }
      : {}),
  };
}

function targetAction(request: http.IncomingMessage): string {
  const target = request.headers["x-amz-target"];
  const prefix = "secretsmanager.";
  if (typeof target !== "string" || !target.startsWith(prefix)) return "";

  return target.slice(prefix.length);
}

function requestedIds(body: Body): string[] {
  if (typeof body.SecretId === "string") return [body.SecretId];
  if (Array.isArray(body.SecretIdList)) {
    return body.SecretIdList.filter(
      (id): id is string => typeof id === "string",
    );
  }
  return [];
}

function parseBody(rawBody: Buffer): Body {
  try {
    const body: unknown = JSON.parse(rawBody.toString("utf8") || "{}");
    if (typeof body === "object" && body !== null && !Array.isArray(body)) {
      return body as Body;
    }
  } catch {
    // Answered below, as AWS answers a body it cannot read.
  }
  throw new AwsError(
    "SerializationException",
    400,
    "the body is not a JSON object",
  );
}

function invalidParameter(message: string): AwsError {
  return new AwsError("InvalidParameterException", 400, message);
}

function stringField(body: Body, name: string): string {
  const value = body[name];
  if (typeof value !== "string" || value === "") {
    throw invalidParameter(`${name} must be a non-empty string`);
  }
  return value;
}

function optionalString(body: Body, name: string): string | undefined {
  return body[name] === undefined ? undefined : stringField(body, name);
}

function readBody(request: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function send(response: http.ServerResponse, status: number, payload: Body) {
  const body = JSON.stringify(payload);
  response.writeHead(status, {
    "content-type": "application/x-amz-json-1.1",
    "content-length": Buffer.byteLength(body),
    "x-amzn-requestid": randomUUID(),
  });
  response.end(body);
}

interface Authorization {
  credential: string;
  signedHeaders: string[];
  signature: string;
}

// "AWS4-HMAC-SHA256 Credential=AKID/20240101/eu-west-1/secretsmanager/aws4_request,
//  SignedHeaders=host;x-amz-date;..., Signature=<hex>"
function parseAuthorization(header: string): Authorization {
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^,]+), ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      header,
    );
  if (match === null) {
    throw new AwsError(
      "IncompleteSignatureException",
      400,
      "Authorization header requires Credential, SignedHeaders and Signature",
    );
  }
  return {
    credential: match[1]!,
    signedHeaders: match[2]!.split(";"),
    signature: match[3]!,
  };
}

// The signature of AWS's "Create a signed AWS API request" (SigV4), for a
// POST to "/" with no query string.
function signature(
  request: http.IncomingMessage,
  rawBody: Buffer,
  authorization: Authorization,
  secretAccessKey: string,
): string {
  const amzDate = String(request.headers["x-amz-date"] ?? "");
  const scope = authorization.credential.split("/").slice(1).join("/");
  const [date, region, service] = scope.split("/") as [string, string, string];
  const canonicalRequest = [
    "POST",
    "/",
    "",
    authorization.signedHeaders
      .map((name) => `${name}:${canonicalValue(request.headers[name])}\n`)
      .join(""),
    authorization.signedHeaders.join(";"),
    sha256(rawBody),
  ].join("\n");
  const stringToSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    sha256(canonicalRequest),
  ].join("\n");
  const key = [date, region, service, "aws4_request"].reduce<Buffer>(
    (previous, part) => hmac(previous, part),
    Buffer.from(`AWS4${secretAccessKey}`),
  );
  return hmac(key, stringToSign).toString("hex");
}

function canonicalValue(value: string | string[] | undefined): string {
  const joined = Array.isArray(value) ? value.join(",") : (value ?? "");
  return joined.trim().replace(/\s+/g, " ");
}

function sha256(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function hmac(key: Buffer, data: string): Buffer {
  return createHmac("sha256", key).update(data).digest();
}
