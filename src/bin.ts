/**
 * The program: runs `main` and turns its errors into one log line and an
 * exit code. A stack trace is never shown: an error that is not ours is
 * reported by kind, with exit 70 (EX_SOFTWARE), as a bug.
 */
import { EntrypointError } from "./errors.ts";
import { createLogger } from "./logging.ts";
import { main } from "./main.ts";

const internalErrorCode = 70;

// process.exit rather than waiting for the event loop to drain: a client's
// keep-alive socket must not hold a finished check or render open. stdout
// and stderr are files or pipes here, which Node writes synchronously.
async function run(): Promise<never> {
  try {
    process.exit(await main(process.argv.slice(2), process.env));
  } catch (error) {
    process.exit(await report(error));
  }
}

async function report(error: unknown): Promise<number> {
  if (error instanceof EntrypointError && error.logged) return error.exitCode;

  // The run's logger may not exist yet (a bad option): this one honours the
  // same settings when they are valid.
  const logger = await createLogger({
    level: "info",
    format:
      process.env.SECRET_ENTRYPOINT_LOG_FORMAT === "pretty" ? "pretty" : "json",
  });
  if (error instanceof EntrypointError) {
    logger.error({ event: "error", exitCode: error.exitCode }, error.message);
    return error.exitCode;
  }
  const kind = error instanceof Error ? error.name : typeof error;
  logger.error(
    { event: "error", exitCode: internalErrorCode },
    `internal error (${kind}); please report it with the command line and settings used, not the secrets`,
  );
  return internalErrorCode;
}

void run();
