/**
 * Turns a failed request into the error the user sees: what was asked, what
 * Vault or the network said, and what to change. The exit code follows
 * DESIGN section 6: 77 denied, 66 missing, 69 unavailable, 78 TLS setup.
 * Vault's own words in them have been redacted by http.ts.
 */
import { EntrypointError, ExitCode } from "../../src/errors.ts";
import type { ExitCodeValue } from "../../src/errors.ts";
import { describeFailure, VaultRequestError } from "./http.ts";
import type { Failure } from "./http.ts";

/** The address the run talks to, for messages about the connection. */
export interface Where {
  address: string;
}

/** The hint shown with a TLS failure: the settings that decide trust. */
export const tlsHint =
  "check VAULT_CACERT or VAULT_CAPATH (the CA that signed Vault's certificate), VAULT_TLS_SERVER_NAME, and VAULT_CLIENT_CERT and VAULT_CLIENT_KEY if Vault asks for a client certificate";

/**
 * The error for a request that failed for a reason that does not depend on
 * what was asked: the network, TLS, a sealed or overloaded server, the
 * deadline. Returns undefined for answers the caller explains (4xx).
 */
export function transportError(
  subject: string,
  error: VaultRequestError,
  where: Where,
): EntrypointError | undefined {
  const failure = error.failure;
  const tries = attempts(error);
  switch (failure.kind) {
    case "tls":
      return fail(
        `${subject}: TLS connection to ${where.address} failed: ${describeFailure(failure)}; ${tlsHint}`,
        ExitCode.config,
      );
    case "notTls":
      return fail(
        `${subject}: TLS connection to ${where.address} failed: ${describeFailure(failure)}; check the scheme and port of VAULT_ADDR (https:// needs a server that speaks TLS there)`,
        ExitCode.config,
      );
    case "network":
      return fail(
        `${subject}: Vault at ${where.address} is unreachable: ${describeFailure(failure)}${tries}`,
        ExitCode.unavailable,
      );
    case "deadline":
      return fail(
        `${subject}: the run's deadline passed before Vault at ${where.address} answered${tries}; raise --timeout or check Vault's health`,
        ExitCode.unavailable,
      );
    case "status":
      return statusTransportError(subject, failure, tries);
  }
}

function statusTransportError(
  subject: string,
  failure: Extract<Failure, { kind: "status" }>,
  tries: string,
): EntrypointError | undefined {
  if (isSealed(failure)) {
    return fail(
      `${subject}: Vault is sealed (503)${tries}; unseal it or point VAULT_ADDR at an unsealed node`,
      ExitCode.unavailable,
    );
  }
  if (
    failure.status >= 500 ||
    failure.status === 429 ||
    failure.status === 412
  ) {
    return fail(
      `${subject}: Vault answered ${describeFailure(failure)}${tries}`,
      ExitCode.unavailable,
    );
  }
  return undefined;
}

function isSealed(failure: Extract<Failure, { kind: "status" }>) {
  return (
    failure.status === 503 &&
    failure.errors.some((entry) => /sealed/i.test(entry))
  );
}

function attempts(error: VaultRequestError): string {
  return error.attempts > 1 ? ` after ${error.attempts} attempts` : "";
}

/** The status of a failed answer, when Vault answered. */
export function statusOf(error: VaultRequestError): number | undefined {
  return error.failure.kind === "status" ? error.failure.status : undefined;
}

/** A 4xx answer the caller does not explain further. */
export function otherStatusError(
  subject: string,
  error: VaultRequestError,
): EntrypointError {
  const status = statusOf(error);
  if (status !== undefined && status >= 300 && status < 400) {
    return fail(
      `${subject}: Vault answered with a redirect (${status}); point VAULT_ADDR at the active node or at the cluster's load balancer (redirects are not followed, so that the token goes to no other host)`,
      ExitCode.config,
    );
  }
  const code: ExitCodeValue =
    status === 401 || status === 403 ? ExitCode.denied : ExitCode.invalid;
  return fail(`${subject}: Vault rejected the request: ${error.message}`, code);
}

function fail(message: string, code: ExitCodeValue): EntrypointError {
  return new EntrypointError(message, code);
}
