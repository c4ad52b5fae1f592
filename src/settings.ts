/**
 * The environment the entrypoint works from: its own, plus an env file
 * (--env-from) when one is given.
 */
import fs from "node:fs";

import { parseEnvFile } from "./env-file.ts";
import { EntrypointError, ExitCode } from "./errors.ts";
import { logEvent, type Logger } from "./logging.ts";
import type { Options } from "./options.ts";

/**
 * The environment with the env file's variables laid over it. The file wins:
 * it holds what an init container resolved for this very container.
 */
export function loadEnvironment(
  env: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): NodeJS.ProcessEnv {
  if (options.envFrom === undefined) return env;

  const values = parseEnvFile(readEnvFile(options.envFrom), options.envFrom);
  logEvent(
    logger,
    "debug",
    "env-file.load",
    { file: options.envFrom, variables: [...values.keys()] },
    `loaded ${values.size} variables from ${options.envFrom}`,
  );
  return { ...env, ...Object.fromEntries(values) };
}

function readEnvFile(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "unknown error";
    const exitCode =
      code === "ENOENT"
        ? ExitCode.notFound
        : code === "EACCES"
          ? ExitCode.denied
          : ExitCode.config;
    throw new EntrypointError(
      `cannot read the env file ${file} (${code}); check --env-from (SECRET_ENTRYPOINT_ENV_FROM)`,
      exitCode,
    );
  }
}
