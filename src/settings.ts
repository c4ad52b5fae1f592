/**
 * The environment the entrypoint works from: its own, plus an env file
 * (--env-from) when one is given.
 */
import fs from "node:fs";

import { parseEnvFile } from "./env-file.ts";
import { EntrypointError, ExitCode, usageError } from "./errors.ts";
import { logEvent, type Logger } from "./logging.ts";
import { envPrefix, type Options } from "./options.ts";

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
  refuseSettings(values, options.envFrom);
  logEvent(
    logger,
    "debug",
    "env-file.load",
    { file: options.envFrom, variables: [...values.keys()] },
    `loaded ${values.size} variables from ${options.envFrom}`,
  );
  return { ...env, ...Object.fromEntries(values) };
}

// Options are parsed before the file is read, so a setting in it would be
// dropped without effect: SECRET_ENTRYPOINT_USER there would not drop root.
// Vault's settings stay out too: a file that could set VAULT_ADDR could send
// the container's VAULT_TOKEN to another server.
function refuseSettings(values: Map<string, string>, file: string) {
  for (const name of values.keys()) {
    if (!name.startsWith(envPrefix) && !name.startsWith("VAULT_")) continue;

    throw usageError(
      `${file} sets ${name}, but an env file cannot hold the entrypoint's or Vault's settings; set it in the container's environment or on the command line`,
    );
  }
}

// An env file is a small regular file; /dev/urandom would never end.
const maxEnvFileBytes = 8 * 1024 * 1024;

function readEnvFile(file: string): string {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile() || stat.size > maxEnvFileBytes) {
      throw new EntrypointError(
        `cannot read the env file ${file}: it is not a regular file of at most 8 MiB; check --env-from (SECRET_ENTRYPOINT_ENV_FROM)`,
        ExitCode.config,
      );
    }
    return fs.readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof EntrypointError) throw error;

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
