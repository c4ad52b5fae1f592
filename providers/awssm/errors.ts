/**
 * Turns what the AWS SDK throws, or what a batch answer lists as a failed
 * secret, into an error a user can act on. An SDK error may carry the request
 * and the response body ($metadata, $response, $responseBodyText): none of it
 * is kept. The message and the cause hold only the error's name, its HTTP
 * status and the number of attempts, so that nothing of a secret value or a
 * credential can reach a log through them.
 */
import {
  EntrypointError,
  ExitCode,
  type ExitCodeValue,
} from "../../src/errors.ts";

/** The secret an error is about, as the user named it. */
export interface SecretTarget {
  secretId: string;
  region: string;
  versionStage?: string;
  versionId?: string;
}

/** What went wrong, read from an SDK error or a batch error entry. */
export interface AwsFault {
  /** The AWS error code (`__type`) or, for a network error, its errno code. */
  name: string;
  /** The call that failed, for the cause. */
  operation: "GetSecretValue" | "BatchGetSecretValue";
  /** The batch call succeeded and listed this secret in its `Errors`. */
  listed?: boolean;
  /** AWS's own message: read to tell cases apart, never repeated. */
  message: string;
  status?: number;
  attempts?: number;
  server: boolean;
}

interface Diagnosis {
  exitCode: ExitCodeValue;
  /** What happened, ending with the error's name in parentheses. */
  why: string;
  /** What to change. */
  advice?: string;
}

// Errors of the AWS authentication layer, shared by every JSON service.
const credentialFaults = new Set([
  "UnrecognizedClientException",
  "InvalidClientTokenId",
  "InvalidSignatureException",
  "SignatureDoesNotMatch",
  "IncompleteSignature",
  "ExpiredTokenException",
  "ExpiredToken",
  "RequestExpired",
  "MissingAuthenticationToken",
  "MissingAuthenticationTokenException",
]);

const throttlingFaults = new Set([
  "ThrottlingException",
  "Throttling",
  "TooManyRequestsException",
  "RequestLimitExceeded",
]);

// A request AWS found malformed: a bad version id, an id too long.
const rejectedRequestFaults = new Set([
  "InvalidRequestException",
  "InvalidParameterException",
  "ValidationException",
]);

const networkCodes = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ETIMEDOUT",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "TimeoutError",
]);

const grantAdvice =
  "allow secretsmanager:GetSecretValue on it for the task's role";

/** "aws secret prod/db (version stage AWSPREVIOUS) in eu-west-1" */
export function describeTarget(
  target: Omit<SecretTarget, "region"> & { region?: string },
): string {
  const versions = [
    target.versionStage && `version stage ${target.versionStage}`,
    target.versionId && `version id ${target.versionId}`,
  ].filter(Boolean);
  const version = versions.length > 0 ? ` (${versions.join(", ")})` : "";
  const region = target.region ? ` in ${target.region}` : "";
  return `aws secret ${target.secretId}${version}${region}`;
}

/** Reads the parts of an SDK error that are safe and useful. */
export function faultOf(
  error: unknown,
  operation: AwsFault["operation"],
): AwsFault {
  const raw = (typeof error === "object" && error !== null ? error : {}) as {
    name?: unknown;
    code?: unknown;
    message?: unknown;
    $fault?: unknown;
    $metadata?: { httpStatusCode?: unknown; attempts?: unknown };
  };
  const code = typeof raw.code === "string" ? raw.code : undefined;
  const name = typeof raw.name === "string" ? raw.name : "Error";
  const status = raw.$metadata?.httpStatusCode;
  const attempts = raw.$metadata?.attempts;
  return {
    // Node's network errors are all named "Error"; their code says more.
    name: name === "Error" && code !== undefined ? code : name,
    operation,
    message: typeof raw.message === "string" ? raw.message : "",
    ...(typeof status === "number" ? { status } : {}),
    ...(typeof attempts === "number" ? { attempts } : {}),
    server:
      raw.$fault === "server" || (typeof status === "number" && status >= 500),
  };
}

/**
 * The error for one secret. `cause` is rebuilt from the fault alone, never
 * the SDK's error object.
 */
export function secretError(target: SecretTarget, fault: AwsFault) {
  const { exitCode, why, advice } = diagnose(target, fault);
  const message = `${describeTarget(target)}: ${why}${advice ? `; ${advice}` : ""}`;
  return new EntrypointError(message, exitCode, { cause: safeCause(fault) });
}

// "GetSecretValue: HTTP 400, 1 attempt(s)", named after the AWS error.
function safeCause(fault: AwsFault): Error {
  const details = fault.listed
    ? ["listed in the answer's Errors"]
    : [
        fault.status === undefined ? "no HTTP answer" : `HTTP ${fault.status}`,
        fault.attempts === undefined ? "" : `${fault.attempts} attempt(s)`,
      ].filter(Boolean);
  const cause = new Error(`${fault.operation}: ${details.join(", ")}`);
  cause.name = fault.name;
  return cause;
}

function diagnose(target: SecretTarget, fault: AwsFault): Diagnosis {
  const { name } = fault;
  const tag = `(${name})`;
  if (name === "ResourceNotFoundException") return notFound(target, tag);
  if (name === "AccessDeniedException") {
    return {
      exitCode: ExitCode.denied,
      why: `access denied ${tag}`,
      advice: grantAdvice,
    };
  }
  if (name === "DecryptionFailure") {
    return {
      exitCode: ExitCode.denied,
      why: `Secrets Manager cannot decrypt it with its KMS key ${tag}`,
      advice: "allow kms:Decrypt on the secret's KMS key for the task's role",
    };
  }
  if (credentialFaults.has(name)) return rejectedCredentials(name, tag);
  if (name === "CredentialsProviderError") {
    return {
      exitCode: ExitCode.denied,
      why: `no AWS credentials found ${tag}`,
      advice:
        "give the container a role (ECS task role, EKS service account, instance profile) or set AWS_PROFILE or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
    };
  }
  if (name === "InvalidRequestException" && /deletion/i.test(fault.message)) {
    return {
      exitCode: ExitCode.notFound,
      why: `it is scheduled for deletion ${tag}`,
      advice: `restore it (aws secretsmanager restore-secret --secret-id ${target.secretId}) or stop referencing it`,
    };
  }
  if (rejectedRequestFaults.has(name)) {
    return {
      exitCode: ExitCode.invalid,
      why: `Secrets Manager rejected the request ${tag}`,
      advice:
        "check the secret id, version stage and version id in the reference",
    };
  }
  return unavailable(fault, tag);
}

function notFound(target: SecretTarget, tag: string): Diagnosis {
  const versioned = target.versionStage || target.versionId;
  return {
    exitCode: ExitCode.notFound,
    why: `${versioned ? "no such secret or version" : "no such secret"} ${tag}`,
    advice: `check the name and the region${versioned ? " and the version" : ""}`,
  };
}

function rejectedCredentials(name: string, tag: string): Diagnosis {
  const expired = /Expired/.test(name);
  return {
    exitCode: ExitCode.denied,
    why: `${expired ? "the AWS credentials have expired" : "the AWS credentials were rejected"} ${tag}`,
    advice: expired
      ? "refresh them, or let the SDK's default chain fetch the role's credentials"
      : "check the credentials the SDK's default chain finds (AWS_ACCESS_KEY_ID, AWS_PROFILE, the task or instance role) and the clock",
  };
}

function unavailable(fault: AwsFault, tag: string): Diagnosis {
  const after =
    fault.attempts === undefined ? "" : ` after ${fault.attempts} attempt(s)`;
  const retry =
    "raise SECRET_ENTRYPOINT_AWS_MAX_ATTEMPTS or the deadline, or retry later";
  if (fault.name === "AbortError") {
    return {
      exitCode: ExitCode.unavailable,
      why: `the deadline passed before Secrets Manager answered ${tag}`,
    };
  }
  if (throttlingFaults.has(fault.name)) {
    return {
      exitCode: ExitCode.unavailable,
      why: `throttled${after} ${tag}`,
      advice: retry,
    };
  }
  if (networkCodes.has(fault.name)) {
    return {
      exitCode: ExitCode.unavailable,
      why: `Secrets Manager is unreachable${after} ${tag}`,
      advice:
        "check that the container can reach the Secrets Manager endpoint (network, VPC endpoint, AWS_ENDPOINT_URL_SECRETS_MANAGER)",
    };
  }
  if (fault.server) {
    const status = fault.status === undefined ? "" : `, HTTP ${fault.status}`;
    return {
      exitCode: ExitCode.unavailable,
      why: `Secrets Manager failed${after} (${fault.name}${status})`,
      advice: "retry later",
    };
  }
  const status = fault.status === undefined ? "" : `, HTTP ${fault.status}`;
  return {
    exitCode: ExitCode.unavailable,
    why: `the read failed${after} (${fault.name}${status})`,
  };
}
