/**
 * The program: runs `main` and turns its errors into one log line and an
 * exit code. A stack trace is never shown: an error that is not ours is
 * reported by kind, with exit 70 (EX_SOFTWARE), as a bug.
 */
import { isSea } from "node:sea";

import { EntrypointError, ExitCode } from "./errors.ts";
import { createLogger } from "./logging.ts";
import { main } from "./main.ts";
import { parseOptions, type Options } from "./options.ts";

const internalErrorCode = 70;

// process.exit rather than waiting for the event loop to drain: a client's
// keep-alive socket must not hold a finished check or render open. stdout
// and stderr are files or pipes here, which Node writes synchronously.
async function run(): Promise<never> {
  // Node's own SIGUSR1 handler opens a debugger port in this process, which
  // holds credentials. A listener of ours replaces it; it is reset to the
  // default when the command is exec'd.
  process.on("SIGUSR1", () => {});
  try {
    checkRuntime();
    relaunchWithoutDebugger(process.argv.slice(2), process.env);
    process.exit(await main(process.argv.slice(2), process.env));
  } catch (error) {
    process.exit(await report(error));
  }
}

// process.execve came with Node 22.15 (and 23.11); without it no command can
// be exec'd, and every start would end in an error at the last step.
function checkRuntime() {
  if (typeof process.execve !== "function") {
    throw new EntrypointError(
      `secret-entrypoint needs Node >= 22.15 for process.execve, and this is Node ${process.version}; use the single executable dist/secret-entrypoint, or a newer Node`,
      ExitCode.config,
    );
  }
  // NODE_DEBUG=net makes Node print each connection's options, request
  // headers and so tokens included. Node reads it once at start, so it
  // cannot be switched off from here.
  if (process.env.NODE_DEBUG) {
    throw new EntrypointError(
      "NODE_DEBUG is set, and it would make Node print the entrypoint's requests, credentials included; unset it, or set it for the command alone: secret-entrypoint -- env NODE_DEBUG=... COMMAND",
      ExitCode.config,
    );
  }
}

// A long-running mode holds credentials for its whole life, as root in
// supervise mode; the listener above is set only once the bundle runs. So
// the bundle starts itself again with --disable-sigusr1, which Node honours
// from its first instruction. The single executable has the flag built in.
function relaunchWithoutDebugger(argv: string[], env: NodeJS.ProcessEnv) {
  if (isSea() || process.execArgv.includes("--disable-sigusr1")) return;

  let options: Options;
  try {
    options = parseOptions(argv, env);
  } catch {
    return;
  }
  const refreshing =
    options.render !== undefined && options.refreshMs !== undefined;
  if (!options.supervise && !refreshing) return;

  const node = process.execPath;
  const script = process.argv[1]!;
  const args = [
    node,
    ...process.execArgv,
    "--disable-sigusr1",
    script,
    ...argv,
  ];
  process.execve!(node, args, env as Record<string, string>);
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
