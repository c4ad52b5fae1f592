/**
 * Logs: pino, one JSON object a line, on stderr, since stdout belongs to the
 * command. Each line has a stable `event` and a sentence in `msg`.
 *
 * The destination is synchronous: in exec mode the process is replaced by
 * the command right after the last line, and an asynchronous write would be
 * lost with it.
 */
import pino, { type Logger } from "pino";

import { EntrypointError } from "./errors.ts";

export type { Logger } from "pino";

/** The stable names of what the entrypoint logs. */
export type LogEvent =
  | "options.unknown"
  | "mock.active"
  | "env-file.load"
  | "reference.skipped"
  | "provider.load"
  | "provider.close"
  | "vault.login"
  | "vault.tls"
  | "vault.token.keep"
  | "vault.token.revoke"
  | "awssm.batch.denied"
  | "resolve.optional"
  | "privileges.root"
  | "privileges.inheritable"
  | "render.write"
  | "render.unchanged"
  | "refresh.error"
  | "check.finish"
  | "supervise.start"
  | "supervise.refresh"
  | "exec"
  | "error";

// A backstop only: the code never hands values or credentials to the logger.
const redactedPaths = [
  "value",
  "values",
  "secret",
  "token",
  "password",
  "*.value",
  "*.token",
  "*.password",
  "*.secret",
  "headers.authorization",
  "*.headers.authorization",
];

/** Creates the logger for a run. */
export async function createLogger(options: {
  level: string;
  format: "json" | "pretty";
}): Promise<Logger> {
  const settings = {
    level: options.level,
    base: { pid: process.pid },
    redact: { paths: redactedPaths, censor: "[redacted]" },
  };
  if (options.format === "pretty") {
    return pino(settings, await prettyStream());
  }
  return pino(settings, pino.destination({ fd: 2, sync: true }));
}

// Loaded only when asked for: most runs log JSON.
async function prettyStream() {
  const { default: pretty } = await import("pino-pretty");
  return pretty({
    destination: 2,
    sync: true,
    ignore: "pid,hostname",
    translateTime: "SYS:HH:MM:ss.l",
  });
}

/** Logs one event with its fields and a sentence for people. */
export function logEvent(
  logger: Logger,
  level: "debug" | "info" | "warn" | "error",
  event: LogEvent,
  fields: Record<string, unknown>,
  message: string,
): void {
  logger[level]({ event, ...fields }, message);
}

/**
 * Logs why a refresh round failed and what stays in place; an error that
 * is not the entrypoint's is a bug and is thrown on.
 */
export function logRefreshFailure(
  logger: Logger,
  error: unknown,
  keeping: string,
): void {
  if (!(error instanceof EntrypointError)) throw error;

  logEvent(
    logger,
    "error",
    "refresh.error",
    { exitCode: error.exitCode },
    `refresh failed, ${keeping}: ${error.message}`,
  );
}
