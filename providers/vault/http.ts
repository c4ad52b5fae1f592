/**
 * Requests to Vault through node-vault (on our own transport, see
 * transport.ts), with a timeout per attempt inside
 * the run's deadline and retries with backoff and jitter on what may pass:
 * network errors, 5xx, 429 and 412 (a performance standby that has not yet
 * caught up). Failures become a `VaultRequestError` that holds the status and
 * Vault's `errors`, never node-vault's error, whose request options carry the
 * token.
 */
import http from "node:http";
import https from "node:https";

import nodeVault from "node-vault";

import { redact } from "./redact.ts";
import type { VaultSettings } from "./settings.ts";
import { transport } from "./transport.ts";

/** Why a request failed, in terms that carry no credential. */
export type Failure =
  | { kind: "status"; status: number; errors: string[]; body: unknown }
  | { kind: "network"; code: string }
  | { kind: "tls"; code: string; reason: string }
  | { kind: "notTls"; code: string }
  | { kind: "deadline" };

/** A failed request to Vault. Its message is safe to show. */
export class VaultRequestError extends Error {
  readonly failure: Failure;
  /** Attempts made before giving up. */
  readonly attempts: number;

  constructor(failure: Failure, attempts: number) {
    super(describeFailure(failure));
    this.name = "VaultRequestError";
    this.failure = failure;
    this.attempts = attempts;
  }
}

/** One call to Vault's HTTP API; `path` has no leading `/v1/`. */
export interface VaultCall {
  method: "GET" | "POST";
  path: string;
  body?: Record<string, unknown>;
}

/** How long and how often a call may try. */
export interface RetryPolicy {
  signal: AbortSignal;
  /** Milliseconds since the epoch after which no attempt starts. */
  deadline: number;
  /** Attempts after the first; Infinity to retry until the deadline. */
  retries: number;
}

/** The TLS material, already read from the files the settings name. */
export interface TlsMaterial {
  ca?: Buffer[];
  cert?: Buffer;
  key?: Buffer;
}

// node-vault logs request bodies (a login's JWT or secret id) through the
// `debug` package when DEBUG=node-vault is set; we give it a mute logger.
const mute = Object.assign(() => undefined, { enabled: false });

/** A Vault client for one run. `destroy` closes its kept-alive sockets. */
export class VaultHttp {
  token: string | undefined;
  /** Credentials to cut out of Vault's error strings, besides the token. */
  readonly #credentials = new Set<string>();
  readonly #client: nodeVault.client;
  readonly #httpAgent = new http.Agent({ keepAlive: true });
  readonly #httpsAgent: https.Agent;
  readonly #timeoutMs: number;

  constructor(settings: VaultSettings, tls: TlsMaterial) {
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      rejectUnauthorized: !settings.tls.skipVerify,
      ...(tls.ca === undefined ? {} : { ca: tls.ca }),
      ...(tls.cert === undefined ? {} : { cert: tls.cert, key: tls.key }),
      ...(settings.tls.serverName === undefined
        ? {}
        : { servername: settings.tls.serverName }),
    });
    this.#timeoutMs = settings.requestTimeoutMs;
    this.#client = nodeVault({
      endpoint: settings.address.href.replace(/\/+$/, ""),
      debug: mute,
      "request-promise": transport,
    });
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX
    // from process.env; only our settings decide.
    const loose = this.#client as unknown as Record<string, unknown>;
    loose["token"] = undefined;
    loose["pathPrefix"] = "";
    loose["namespace"] = settings.namespace;
  }

  /** Sends `call`, retrying as `policy` allows; returns Vault's JSON body. */
  async send(call: VaultCall, policy: RetryPolicy): Promise<unknown> {
    let attempt = 0;
    for (;;) {
      const failure = await this.#attempt(call, policy);
      if (failure.kind === "ok") return failure.body;

      attempt += 1;
      const wait = backoff(attempt);
      if (
        !isRetryable(failure) ||
        attempt > policy.retries ||
        Date.now() + wait >= policy.deadline
      ) {
        throw new VaultRequestError(failure, attempt);
      }
      await sleep(wait, policy.signal);
    }
  }

  /**
   * Credentials this run knows that Vault's error strings must not show
   * (VAULT_TOKEN, a role id...). The token in use is added by itself.
   */
  addCredentials(values: Iterable<string | undefined>): void {
    for (const value of values) {
      if (value !== undefined && value !== "") this.#credentials.add(value);
    }
  }

  /** Closes kept-alive connections so that the process may end. */
  destroy(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  async #attempt(
    call: VaultCall,
    policy: RetryPolicy,
  ): Promise<Failure | { kind: "ok"; body: unknown }> {
    const timeout = Math.min(this.#timeoutMs, policy.deadline - Date.now());
    if (timeout <= 0 || policy.signal.aborted) return { kind: "deadline" };

    this.#client.token = this.token ?? "";
    try {
      const body: unknown = await this.#client.request({
        path: `/${call.path}`,
        method: call.method,
        ...(call.body === undefined ? {} : { json: call.body }),
        timeout,
        signal: policy.signal,
        agents: { http: this.#httpAgent, https: this.#httpsAgent },
      });
      return { kind: "ok", body };
    } catch (error) {
      const failure = this.#redacted(classify(error));
      // An attempt whose timeout the deadline cut short ran out of run, not
      // of patience: the two timers may fire in either order.
      const cut = timeout < this.#timeoutMs;
      const timedOut =
        failure.kind === "network" && failure.code === "ETIMEDOUT";
      return policy.signal.aborted || (cut && timedOut)
        ? { kind: "deadline" }
        : failure;
    }
  }

  #redacted(failure: Failure): Failure {
    if (failure.kind !== "status") return failure;

    const known = [
      ...this.#credentials,
      ...(this.token === undefined ? [] : [this.token]),
    ];
    return {
      ...failure,
      errors: failure.errors.map((entry) => redact(entry, known)),
    };
  }
}

// Exponential from 200 ms, capped at 5 s, with "equal jitter": half the
// delay is fixed, half random, so that parallel reads spread out.
function backoff(attempt: number): number {
  const delay = Math.min(5000, 200 * 2 ** (attempt - 1));
  return delay / 2 + Math.random() * (delay / 2);
}

function isRetryable(failure: Failure): boolean {
  switch (failure.kind) {
    case "network":
      return true;
    case "status":
      return (
        failure.status >= 500 ||
        failure.status === 429 ||
        failure.status === 412
      );
    default:
      return false;
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

// TLS failures have OpenSSL's or Node's codes; they need a configuration
// change, so they are not retried. EPROTO is how Node reports a TLS record
// it cannot parse.
const tlsCode =
  /CERT|SSL|TLS|UNABLE_TO_|SIGNATURE|ALTNAME|HOSTNAME|ISSUER|SELF_SIGNED|^EPROTO$/;

// An https:// address whose server answers plain HTTP: OpenSSL reads the
// HTTP answer as a TLS record and finds a "wrong version number" (EPROTO,
// or ERR_SSL_WRONG_VERSION_NUMBER), or a record too long.
const plainHttp =
  /WRONG_VERSION_NUMBER|wrong version number|PACKET_LENGTH_TOO_LONG|packet length too long|HTTP_REQUEST/;

/** Turns what node-vault or the transport threw into a failure without secrets. */
function classify(error: unknown): Failure {
  const record = (error ?? {}) as Record<string, unknown>;
  const response = record["response"] as
    { statusCode?: unknown; body?: unknown } | undefined;
  if (response !== undefined && typeof response.statusCode === "number") {
    return {
      kind: "status",
      status: response.statusCode,
      errors: vaultErrors(response.body),
      body: response.body,
    };
  }

  const code = typeof record["code"] === "string" ? record["code"] : "";
  const message =
    typeof record["message"] === "string" ? record["message"] : "";
  if (plainHttp.test(code) || plainHttp.test(message)) {
    return { kind: "notTls", code };
  }
  if (tlsCode.test(code)) return { kind: "tls", code, reason: tlsReason(code) };
  return { kind: "network", code: code || "EUNKNOWN" };
}

// Node's and OpenSSL's messages span lines and name OpenSSL internals; the
// code says enough to pick words a user can act on.
function tlsReason(code: string): string {
  if (/ALTNAME|HOSTNAME/.test(code)) {
    return "Vault's certificate is not valid for this host name";
  }
  if (/EXPIRED|NOT_YET_VALID/.test(code)) {
    return "Vault's certificate is expired or not yet valid";
  }
  if (/ALERT_CERTIFICATE_REQUIRED|ALERT_HANDSHAKE_FAILURE/.test(code)) {
    return "Vault requires a client certificate";
  }
  if (
    /ALERT_(BAD|UNKNOWN|UNSUPPORTED)_CERTIFICATE|ALERT_UNKNOWN_CA/.test(code)
  ) {
    return "Vault refused the client certificate";
  }
  if (/SELF_SIGNED|UNABLE_TO_|ISSUER|SIGNATURE|CERT_/.test(code)) {
    return "Vault's certificate is not signed by a trusted CA";
  }
  return "the TLS handshake failed";
}

// Vault's error body is {"errors": ["..."]}; a proxy in front may send HTML.
function vaultErrors(body: unknown): string[] {
  const errors = (body as { errors?: unknown } | null)?.errors;
  if (!Array.isArray(errors)) return [];

  return errors
    .filter((entry): entry is string => typeof entry === "string")
    .map((entry) => entry.replace(/\s+/g, " ").trim());
}

const networkWords: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "no answer within the request timeout",
  ENOTFOUND: "host not found",
  EAI_AGAIN: "host name lookup failed",
  EHOSTUNREACH: "host unreachable",
};

// A proxy or load balancer in front of Vault answers these itself, without
// Vault's `errors`: the name says where to look.
const gatewayWords: Record<number, string> = {
  502: "bad gateway",
  503: "service unavailable",
  504: "gateway timeout",
};

/** A short description of a failure, safe for messages. */
export function describeFailure(failure: Failure): string {
  switch (failure.kind) {
    case "status": {
      const said = failure.errors.filter((entry) => entry !== "").join("; ");
      const name = gatewayWords[failure.status];
      if (said === "") {
        return name === undefined
          ? `status ${failure.status}`
          : `${name} (${failure.status})`;
      }
      return name === undefined
        ? `${said} (${failure.status})`
        : `${said} (${failure.status} ${name})`;
    }
    case "network":
      return networkWords[failure.code] ?? `network error ${failure.code}`;
    case "tls":
      return `${failure.reason} (${failure.code})`;
    case "notTls":
      return `the server does not answer TLS (${failure.code || "EPROTO"})`;
    case "deadline":
      return "the run's deadline passed";
  }
}
