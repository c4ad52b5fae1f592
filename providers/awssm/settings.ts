/**
 * The provider's settings, read from the entrypoint's environment. The SDK
 * reads the rest itself: credentials (default chain), endpoint overrides
 * (AWS_ENDPOINT_URL_SECRETS_MANAGER, AWS_ENDPOINT_URL; checked here first)
 * and AWS_MAX_ATTEMPTS.
 */
import { EntrypointError, ExitCode } from "../../src/errors.ts";
import type { AwsReference } from "../../src/references.ts";
import { describeTarget } from "./errors.ts";

/** Our own retry setting: unlike AWS_MAX_ATTEMPTS it is not passed on. */
export const maxAttemptsVariable = "SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS";

/**
 * The number of attempts the SDK makes per call, or undefined to leave it
 * to the SDK (AWS_MAX_ATTEMPTS, `max_attempts` in the profile, else 3).
 * A malformed value is configuration, exit 78 (DESIGN section 6).
 */
export function maxAttempts(env: NodeJS.ProcessEnv): number | undefined {
  const raw = env[maxAttemptsVariable];
  if (raw === undefined || raw === "") return undefined;
  if (!/^[1-9][0-9]?$/.test(raw)) {
    throw new EntrypointError(
      `${maxAttemptsVariable}=${raw} is not a whole number from 1 to 99; set the attempts per call, e.g. 3, or unset it to leave them to the SDK`,
      ExitCode.config,
    );
  }
  return Number(raw);
}

/** The SDK's endpoint overrides, the service's own first. */
export const endpointVariables = [
  "AWS_ENDPOINT_URL_SECRETS_MANAGER",
  "AWS_ENDPOINT_URL",
] as const;

/**
 * Checks the endpoint overrides the SDK will read: it takes any string and
 * fails only at the first call, with a TypeError that names neither the
 * variable nor the value. An absolute http:// or https:// URL passes; an
 * empty value is unset, as the SDK treats it. Throws exit 78.
 */
export function checkEndpoints(env: NodeJS.ProcessEnv): void {
  for (const name of endpointVariables) {
    const raw = env[name];
    if (raw === undefined || raw === "" || isHttpUrl(raw)) continue;

    throw new EntrypointError(
      `${name}=${withoutUserinfo(raw)} is not an endpoint URL; use an absolute http:// or https:// URL, e.g. http://localstack:4566 or https://secretsmanager.eu-west-1.amazonaws.com, or unset it`,
      ExitCode.config,
    );
  }
}

function isHttpUrl(raw: string): boolean {
  try {
    const url = new URL(raw);
    return (
      (url.protocol === "http:" || url.protocol === "https:") &&
      url.hostname !== ""
    );
  } catch {
    return false;
  }
}

// A URL may carry user:password@; the message shows the rest.
function withoutUserinfo(raw: string): string {
  return raw.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, "$1***@");
}

/** The default region for names and partial ARNs, as the AWS CLI picks it. */
export function defaultRegion(env: NodeJS.ProcessEnv): string | undefined {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined;
}

/**
 * The region of the secret: an ARN's own region wins, since the secret lives
 * there whatever the container's default region is.
 */
export function regionOf(
  reference: AwsReference,
  env: NodeJS.ProcessEnv,
): string | undefined {
  return reference.region ?? defaultRegion(env);
}

/** The exit-78 error for a secret whose region nothing names. */
export function noRegionError(reference: AwsReference): EntrypointError {
  return new EntrypointError(
    `no AWS region for ${describeTarget(reference)}: set AWS_REGION (or AWS_DEFAULT_REGION), or reference the secret by its full ARN`,
    ExitCode.config,
  );
}
