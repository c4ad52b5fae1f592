/**
 * The AWS Secrets Manager provider: `awssm:` references. Distinct secrets of
 * one region are read with BatchGetSecretValue, 20 a call and all calls in
 * parallel; a secret pinned to a version stage or id, or alone in its region,
 * is read with GetSecretValue, since the batch call takes no version. When
 * the identity may not batch (the call needs secretsmanager:BatchGetSecretValue
 * on top of GetSecretValue), every secret is read alone from then on.
 *
 * Credentials, endpoint overrides and AWS_MAX_ATTEMPTS are left to the SDK,
 * so that the entrypoint finds the same identity and endpoint as the
 * application's own AWS SDK.
 */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";

import type { AwsReference } from "../src/references.ts";
import { faultOf, secretError, type AwsFault } from "./awssm/errors.ts";
import {
  batchLimit,
  readBatch,
  readOne,
  targetOf,
  type Target,
} from "./awssm/reads.ts";
import {
  checkEndpoints,
  maxAttempts,
  noRegionError,
  regionOf,
} from "./awssm/settings.ts";
import type {
  CreateProvider,
  ReadContext,
  ReadResult,
  SecretRequest,
} from "./types.ts";

type Results = Map<string, ReadResult>;

/** Sets up the provider; reads nothing until `read`. */
export const create: CreateProvider = (setup) => {
  const attempts = maxAttempts(setup.env);
  checkEndpoints(setup.env);
  const clients = new Map<string, SecretsManagerClient>();
  const state = { batchDenied: false };

  const clientFor = (region: string, context: ReadContext) => {
    let client = clients.get(region);
    if (client === undefined) {
      client = newClient(region, attempts, attemptTimeout(context, attempts));
      clients.set(region, client);
    }
    return client;
  };

  return {
    name: "awssm",
    async read(requests, context) {
      const results: Results = new Map();
      const byRegion = groupByRegion(requests, setup.env, results);
      await Promise.all(
        [...byRegion].map(([region, targets]) =>
          readRegion({
            client: clientFor(region, context),
            targets,
            context,
            state,
            results,
          }),
        ),
      );
      return results;
    },
    async close() {
      for (const client of clients.values()) client.destroy();
      clients.clear();
    },
  };
};

// Adaptive mode slows every call of the client down when AWS throttles one,
// rather than retrying each call on its own schedule: a container that reads
// 45 secrets at start should not turn one throttle into 45.
function newClient(
  region: string,
  attempts: number | undefined,
  timeoutMs: number,
) {
  return new SecretsManagerClient({
    region,
    retryMode: "adaptive",
    requestHandler: {
      connectionTimeout: Math.min(timeoutMs, 5_000),
      requestTimeout: timeoutMs,
      // Otherwise the handler only prints a warning and waits on.
      throwOnRequestTimeout: true,
    },
    customUserAgent: "secret-entrypoint",
    ...(attempts === undefined ? {} : { maxAttempts: attempts }),
  });
}

// Each attempt gets a share of what is left of the run's deadline, so that
// a connection that hangs is given up and retried rather than eating the
// whole deadline; one share is left over for the backoff between attempts.
// At least 1 s, at most 30 s.
function attemptTimeout(context: ReadContext, attempts: number | undefined) {
  const share = (context.deadline - Date.now()) / ((attempts ?? 3) + 1);
  return Math.round(Math.min(Math.max(share, 1_000), 30_000));
}

/**
 * Groups the requests by the region of their secret. A request without a
 * region fails alone; when none has one, nothing can be read and `read`
 * throws (exit 78).
 */
function groupByRegion(
  requests: readonly SecretRequest[],
  env: NodeJS.ProcessEnv,
  results: Results,
): Map<string, Target[]> {
  const byRegion = new Map<string, Target[]>();
  for (const request of requests) {
    const reference = request.reference as AwsReference;
    const region = regionOf(reference, env);
    if (region === undefined) {
      results.set(request.identity, {
        ok: false,
        error: noRegionError(reference),
      });
      continue;
    }
    const targets = byRegion.get(region) ?? [];
    targets.push(targetOf(request, region));
    byRegion.set(region, targets);
  }
  const first = requests[0];
  if (byRegion.size === 0 && first !== undefined) {
    throw noRegionError(first.reference as AwsReference);
  }
  return byRegion;
}

interface RegionRead {
  client: SecretsManagerClient;
  targets: Target[];
  context: ReadContext;
  state: { batchDenied: boolean };
  results: Results;
}

async function readRegion(read: RegionRead): Promise<void> {
  const pinned = read.targets.filter((t) => t.versionStage || t.versionId);
  const latest = read.targets.filter((t) => !t.versionStage && !t.versionId);
  const alone = read.state.batchDenied || latest.length === 1;
  const singles = alone ? [...pinned, ...latest] : pinned;
  const batches = alone ? [] : chunks(latest, batchLimit);
  await Promise.all([
    ...singles.map((target) => readAlone(read, target)),
    ...batches.map((batch) => readChunk(read, batch)),
  ]);
}

async function readAlone(read: RegionRead, target: Target): Promise<void> {
  const result = await readOne(read.client, target, read.context.signal);
  read.results.set(target.request.identity, result);
}

async function readChunk(read: RegionRead, batch: Target[]): Promise<void> {
  let answer;
  try {
    answer = await readBatch(read.client, batch, read.context.signal);
  } catch (error) {
    const fault = faultOf(error, "BatchGetSecretValue");
    if (fault.name === "AccessDeniedException") {
      warnBatchDenied(read, batch[0]!.region);
      await Promise.all(batch.map((target) => readAlone(read, target)));
    } else {
      failBatch(read, batch, fault);
    }
    return;
  }
  for (const [target, result] of answer.results) {
    read.results.set(target.request.identity, result);
  }
  // An id the answer does not mention (AWS may page a large answer) is read
  // alone rather than assumed missing.
  await Promise.all(answer.unanswered.map((target) => readAlone(read, target)));
}

// The whole call failed (network, throttling, credentials): every secret of
// the batch fails for the same reason, told per variable.
function failBatch(read: RegionRead, batch: Target[], fault: AwsFault): void {
  for (const target of batch) {
    const error = secretError(target, fault);
    read.results.set(target.request.identity, { ok: false, error });
  }
}

// Logged once per provider: the fallback costs round trips, not correctness.
function warnBatchDenied(read: RegionRead, region: string): void {
  if (read.state.batchDenied) return;

  read.state.batchDenied = true;
  read.context.logger.warn(
    {
      event: "awssm.batch.denied",
      provider: "awssm",
      region,
      hint: "allow secretsmanager:BatchGetSecretValue to read up to 20 secrets a call",
    },
    "BatchGetSecretValue was denied; reading each AWS secret with GetSecretValue instead",
  );
}

function chunks<T>(items: readonly T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) {
    result.push(items.slice(start, start + size));
  }
  return result;
}
