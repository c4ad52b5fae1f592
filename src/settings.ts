/**
 * The environment the entrypoint works from: its own, plus an env file when
 * one is given. Settings are checked here so that a typo does not pass
 * silently.
 */
import fs from "node:fs";

import { parseEnvFile } from "./env-file.ts";
import { EntrypointError, ExitCode } from "./errors.ts";
import { logEvent, type Logger } from "./logging.ts";
import { envName, envPrefix, optionSpecs, type Options } from "./options.ts";

// Settings that belong to a provider rather than to the option table.
const providerPrefixes = [`${envPrefix}VAULT_`, `${envPrefix}AWS_`];

/** Warns about SECRET_ENTRYPOINT_* variables that nothing reads. */
export function warnUnknownSettings(
  env: NodeJS.ProcessEnv,
  logger: Logger,
): void {
  const known = new Set<string>(optionSpecs.map((spec) => envName(spec.name)));
  for (const name of Object.keys(env)) {
    if (!name.startsWith(envPrefix) || known.has(name)) continue;
    if (providerPrefixes.some((prefix) => name.startsWith(prefix))) continue;

    logEvent(
      logger,
      "warn",
      "options.unknown",
      { variable: name },
      `${name} is not a setting of secret-entrypoint and is ignored; see --help for the valid ones`,
    );
  }
}

/**
 * The environment with the env file's variables laid over it. The file wins:
 * it holds what an init container resolved for this very container.
 */
export function loadEnvironment(
  env: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): NodeJS.ProcessEnv {
  if (options.envFile === undefined) return env;

  const values = parseEnvFile(readEnvFile(options.envFile), options.envFile);
  logEvent(
    logger,
    "debug",
    "env-file.load",
    { file: options.envFile, variables: [...values.keys()] },
    `loaded ${values.size} variables from ${options.envFile}`,
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
      `cannot read the env file ${file} (${code}); check --env-file (SECRET_ENTRYPOINT_ENV_FILE)`,
      exitCode,
    );
  }
}
