/**
 * The interface between resolution and the places secrets live. A provider
 * reads whole secrets; picking a key, decoding and placing the value are the
 * resolver's work, the same for every provider.
 */
import type { Logger } from "pino";

import type { EntrypointError } from "../src/errors.ts";
import type { Reference } from "../src/references.ts";

/** A lease on a dynamic secret, kept so that a long run can renew it. */
export interface Lease {
  id: string;
  durationSeconds: number;
  renewable: boolean;
}

/**
 * What a provider returns for one secret:
 * - `text`: a string that may hold JSON, which a selector then parses
 *   (a file, an AWS SecretString);
 * - `bytes`: binary content (an AWS SecretBinary, a file that is not UTF-8);
 * - `data`: structured data already decoded (a Vault secret's `data`).
 */
export type Secret = (
  | { kind: "text"; text: string }
  | { kind: "bytes"; bytes: Buffer }
  | { kind: "data"; data: Record<string, unknown> }
) & { lease?: Lease };

/** One distinct secret to read, and the first reference that asked for it. */
export interface SecretRequest {
  /** Equal identities were merged: one read serves them all. */
  identity: string;
  reference: Reference;
}

/** The result of one read: the secret, or why it could not be had. */
export type ReadResult =
  { ok: true; secret: Secret } | { ok: false; error: EntrypointError };

/** What every read gets from the run. */
export interface ReadContext {
  /** Aborted when the run's deadline passes. */
  signal: AbortSignal;
  /** Milliseconds since the epoch at which the deadline passes. */
  deadline: number;
  logger: Logger;
}

/**
 * A place secrets live. `read` answers every request, in any order, with
 * one result per identity; it throws only when no request can be served
 * (no configuration, failed login), and then the error names the cause.
 */
export interface Provider {
  readonly name: string;
  read(
    requests: readonly SecretRequest[],
    context: ReadContext,
  ): Promise<Map<string, ReadResult>>;
  /** Releases what the reads held (a login token), once they are used. */
  close?(context: ReadContext): Promise<void>;
}

/** What a provider module gets when it is set up. */
export interface ProviderSetup {
  /** The entrypoint's own environment, for the provider's settings. */
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Settings that concern file reads. */
  fileRoots: readonly string[];
  fileTrim: boolean;
}

/** Every provider module exports `create` of this type. */
export type CreateProvider = (setup: ProviderSetup) => Provider;
