/**
 * The two ways to read secrets: GetSecretValue for one, BatchGetSecretValue
 * for up to 20 of one region. Both answer with a ReadResult per request.
 */
import {
  BatchGetSecretValueCommand,
  GetSecretValueCommand,
  type APIErrorType,
  type SecretValueEntry,
  type SecretsManagerClient,
} from "@aws-sdk/client-secrets-manager";

import { EntrypointError, ExitCode } from "../../src/errors.ts";
import type { AwsReference } from "../../src/references.ts";
import type { ReadResult, Secret, SecretRequest } from "../types.ts";
import {
  describeTarget,
  type AwsFault,
  faultOf,
  secretError,
  type SecretTarget,
} from "./errors.ts";

/** BatchGetSecretValue takes at most 20 ids in SecretIdList. */
export const batchLimit = 20;

/** A request with the reference and region it resolved to. */
export interface Target extends SecretTarget {
  request: SecretRequest;
}

/** Makes the target of a request whose region is known. */
export function targetOf(request: SecretRequest, region: string): Target {
  const reference = request.reference as AwsReference;
  return {
    request,
    secretId: reference.secretId,
    region,
    ...(reference.versionStage ? { versionStage: reference.versionStage } : {}),
    ...(reference.versionId ? { versionId: reference.versionId } : {}),
  };
}

/** Reads one secret with GetSecretValue; never throws. */
export async function readOne(
  client: SecretsManagerClient,
  target: Target,
  signal: AbortSignal,
): Promise<ReadResult> {
  const command = new GetSecretValueCommand({
    SecretId: target.secretId,
    ...(target.versionStage ? { VersionStage: target.versionStage } : {}),
    ...(target.versionId ? { VersionId: target.versionId } : {}),
  });
  try {
    const output = await client.send(command, { abortSignal: signal });
    return resultOf(target, output);
  } catch (error) {
    const fault = faultOf(error, "GetSecretValue");
    return { ok: false, error: secretError(target, fault) };
  }
}

/** What one batch call answered, and the targets it left unanswered. */
export interface BatchAnswer {
  results: Map<Target, ReadResult>;
  unanswered: Target[];
}

/**
 * Reads up to 20 secrets with one BatchGetSecretValue. Throws the SDK's
 * error when the call itself fails; a secret that fails alone is a result.
 */
export async function readBatch(
  client: SecretsManagerClient,
  targets: readonly Target[],
  signal: AbortSignal,
): Promise<BatchAnswer> {
  const ids = [...new Set(targets.map((target) => target.secretId))];
  const command = new BatchGetSecretValueCommand({ SecretIdList: ids });
  const output = await client.send(command, { abortSignal: signal });

  const results = new Map<Target, ReadResult>();
  const unanswered: Target[] = [];
  for (const target of targets) {
    const entry = output.SecretValues?.find((value) => matches(target, value));
    const failure = output.Errors?.find(
      (error) => error.SecretId === target.secretId,
    );
    if (entry !== undefined) results.set(target, resultOf(target, entry));
    else if (failure !== undefined) {
      results.set(target, batchFailure(target, failure));
    } else unanswered.push(target);
  }
  return { results, unanswered };
}

/**
 * An entry answers a target asked for by name, by full ARN, or by partial
 * ARN: the full ARN without the "-" and six random characters AWS appends.
 */
function matches(target: Target, entry: SecretValueEntry): boolean {
  const id = target.secretId;
  if (id === entry.Name || id === entry.ARN) return true;

  return (
    id.startsWith("arn:") &&
    entry.ARN !== undefined &&
    entry.ARN.length === id.length + 7 &&
    entry.ARN.startsWith(`${id}-`)
  );
}

function batchFailure(target: Target, failure: APIErrorType): ReadResult {
  const fault: AwsFault = {
    name: failure.ErrorCode ?? "UnknownError",
    operation: "BatchGetSecretValue",
    listed: true,
    message: failure.Message ?? "",
    server: false,
  };
  return { ok: false, error: secretError(target, fault) };
}

function resultOf(
  target: Target,
  output: { SecretString?: string; SecretBinary?: Uint8Array },
): ReadResult {
  const secret = secretOf(output);
  if (secret !== undefined) return { ok: true, secret };

  return {
    ok: false,
    error: new EntrypointError(
      `${describeTarget(target)}: the version has neither SecretString nor SecretBinary`,
      ExitCode.notFound,
    ),
  };
}

function secretOf(output: {
  SecretString?: string;
  SecretBinary?: Uint8Array;
}): Secret | undefined {
  if (output.SecretString !== undefined) {
    return { kind: "text", text: output.SecretString };
  }
  if (output.SecretBinary !== undefined) {
    const { buffer, byteOffset, byteLength } = output.SecretBinary;
    return {
      kind: "bytes",
      bytes: Buffer.from(buffer, byteOffset, byteLength),
    };
  }
  return undefined;
}
