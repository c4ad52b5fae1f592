/**
 * Exit codes of the entrypoint itself. The values follow BSD's sysexits.h
 * where one fits, and the shell's 126/127 for a command that cannot run.
 */
export const ExitCode = {
  usage: 64,
  invalid: 65,
  notFound: 66,
  noUser: 67,
  unavailable: 69,
  denied: 77,
  config: 78,
  notExecutable: 126,
  commandNotFound: 127,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/**
 * An error the entrypoint reports to the user and exits with. Its message is
 * one line that names what failed and what to change; it never holds a
 * secret value or a credential, and neither may its cause.
 */
export class EntrypointError extends Error {
  readonly exitCode: ExitCodeValue;
  /** Where the error happened, logged as fields beside the message. */
  readonly context: ErrorContext;
  /** Set once the error has been logged with its details. */
  logged = false;

  constructor(
    message: string,
    exitCode: ExitCodeValue,
    options?: ErrorOptions & ErrorContext,
  ) {
    super(message, options);
    this.name = "EntrypointError";
    this.exitCode = exitCode;
    this.context = {
      ...(options?.variable === undefined
        ? {}
        : { variable: options.variable }),
      ...(options?.reference === undefined
        ? {}
        : { reference: options.reference }),
    };
  }
}

/** The variable and reference an error concerns, when it concerns one. */
export interface ErrorContext {
  variable?: string;
  reference?: string;
}

/** A usage error: unknown option or bad option value (exit 64). */
export function usageError(message: string): EntrypointError {
  return new EntrypointError(message, ExitCode.usage);
}

/** A malformed reference or value (exit 65). */
export function invalidError(
  message: string,
  options?: ErrorOptions & ErrorContext,
): EntrypointError {
  return new EntrypointError(message, ExitCode.invalid, options);
}

/** A secret, key or file that does not exist (exit 66). */
export function notFoundError(
  message: string,
  options?: { cause?: unknown },
): EntrypointError {
  return new EntrypointError(message, ExitCode.notFound, options);
}
