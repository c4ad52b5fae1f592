/**
 * The procedure, top to bottom: options, references, resolution, the
 * environment, the privilege drop, exec. Each step returns or throws an
 * EntrypointError; the run's logger logs it, and `bin.ts` exits with its
 * code.
 */
import { checkRows, checkStatus, formatReport } from "./check.ts";
import { assembleValues, commandEnvironment } from "./environment.ts";
import { EntrypointError, usageError } from "./errors.ts";
import { execCommand, findCommand } from "./launch.ts";
import { checkSize } from "./limits.ts";
import { createLogger, logEvent, type Logger } from "./logging.ts";
import { helpText, parseOptions, type Options } from "./options.ts";
import {
  checkCanSwitch,
  dropPrivileges,
  inheritableCapabilities,
  userVariables,
} from "./privileges.ts";
import { renderMode } from "./render-mode.ts";
import { firstFailure, resolveBindings, type Resolution } from "./resolve.ts";
import { scanEnvironment, type Plan } from "./scan.ts";
import { supervise, type Prepared } from "./supervise.ts";
import { loadEnvironment } from "./settings.ts";
import { resolveUser, type TargetUser } from "./users.ts";
import { writeValueFiles } from "./value-files.ts";

declare const __VERSION__: string;
export const version = typeof __VERSION__ === "string" ? __VERSION__ : "dev";

/** A run of the entrypoint: returns the exit code, or never returns (exec). */
export async function main(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const options = parseOptions(argv, env);
  if (options.help) return print(helpText(version));
  if (options.version) return print(`secret-entrypoint ${version}\n`);

  const logger = await createLogger({
    level: options.logLevel,
    format: options.logFormat,
  });
  try {
    return await run(options, env, logger);
  } catch (error) {
    throw logged(error, logger);
  }
}

async function run(
  options: Options,
  env: NodeJS.ProcessEnv,
  logger: Logger,
): Promise<number> {
  if (options.mock !== undefined) {
    logEvent(
      logger,
      "warn",
      "mock.active",
      { mock: options.mock },
      `answering vault: and awssm: references from the mock file ${options.mock}, not from Vault or AWS`,
    );
  }
  const environment = loadEnvironment(env, options, logger);
  const plan = scan(environment, options, logger);
  const target = targetUser(options, logger);

  if (options.check) return check(plan, environment, options, logger);
  const launchWith = (resolution: Resolution, rendered = false) =>
    launch({
      plan,
      resolution,
      environment,
      options,
      logger,
      rendered,
      ...(target ? { target } : {}),
    });
  if (options.supervise) {
    requireCommand(options);
    return supervise({
      options,
      logger,
      ...(target ? { target } : {}),
      resolve: () => resolve(plan, environment, options, logger),
      prepare: (resolution, first) =>
        prepareCommand(
          { plan, resolution, environment, options, logger, target },
          first,
        ),
    });
  }
  if (options.render !== undefined) {
    return renderMode({
      plan,
      options,
      logger,
      ...(target ? { target } : {}),
      resolve: () => resolve(plan, environment, options, logger),
      launch: (resolution) => launchWith(resolution, true),
    });
  }
  requireCommand(options);

  return launchWith(await resolve(plan, environment, options, logger));
}

// Errors are logged by the run's logger, so that its level and format hold.
function logged(error: unknown, logger: Logger): unknown {
  if (!(error instanceof EntrypointError) || error.logged) return error;

  logEvent(
    logger,
    "error",
    "error",
    { ...error.context, exitCode: error.exitCode },
    error.message,
  );
  error.logged = true;
  return error;
}

function print(text: string): number {
  process.stdout.write(text);
  return 0;
}

function requireCommand(options: Options) {
  if (options.command.length > 0) return;

  throw usageError(
    "no command given; usage: secret-entrypoint [options] [--] command [args...] (see --help)",
  );
}

/** Finds every reference; malformed ones fail here, before any network call. */
export function scan(
  environment: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): Plan {
  const plan = scanEnvironment(environment, options);
  for (const { variable, why } of plan.passedOn) {
    logEvent(
      logger,
      "warn",
      "reference.skipped",
      { variable },
      `${variable}: ${why}`,
    );
  }
  return plan;
}

function targetUser(options: Options, logger: Logger): TargetUser | undefined {
  if (options.user === undefined) {
    const runsCommand = !options.check && options.command.length > 0;
    if (process.geteuid!() === 0 && runsCommand) {
      logEvent(
        logger,
        "warn",
        "privileges.root",
        {},
        "running the command as root: no --user (SECRET_ENTRYPOINT_USER) given",
      );
    }
    return undefined;
  }
  const target = resolveUser(options.user);
  if (!options.check) checkCanSwitch(target);
  return target;
}

/** Resolves every reference; a failed one is in the result, not thrown. */
function resolveAll(
  plan: Plan,
  environment: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): Promise<Resolution> {
  return resolveBindings(plan.bindings, {
    env: environment,
    logger,
    timeoutMs: options.timeoutMs,
    fileRoots: options.fileRoots,
    fileTrim: options.fileTrim,
    ...(options.mock === undefined ? {} : { mock: options.mock }),
  });
}

/** Resolves every reference, logs every failure and throws the first. */
export async function resolve(
  plan: Plan,
  environment: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): Promise<Resolution> {
  const resolution = await resolveAll(plan, environment, options, logger);
  for (const result of resolution.results) {
    const { outcome } = result;
    if (outcome.status === "failed") {
      logEvent(
        logger,
        "error",
        "error",
        {
          variable: result.variable,
          reference: result.reference.text,
          exitCode: outcome.error.exitCode,
        },
        outcome.error.message,
      );
    } else if (outcome.status === "absent") {
      logEvent(
        logger,
        "warn",
        "resolve.optional",
        { variable: result.variable, reference: result.reference.text },
        `${outcome.error.message}; ${result.variable} is left unset (optional=true)`,
      );
    }
  }
  const failure = firstFailure(resolution);
  if (failure !== undefined) {
    failure.logged = true;
    throw failure;
  }

  return resolution;
}

async function check(
  plan: Plan,
  environment: NodeJS.ProcessEnv,
  options: Options,
  logger: Logger,
): Promise<number> {
  const resolution = await resolveAll(plan, environment, options, logger);
  const rows = checkRows(resolution);
  process.stdout.write(formatReport(rows, options.format));
  logEvent(
    logger,
    "debug",
    "check.finish",
    {
      references: rows.length,
      failed: rows.filter((row) => row.status === "failed").length,
      durationMs: resolution.durationMs,
    },
    "check finished",
  );
  return checkStatus(rows);
}

interface LaunchInput {
  plan: Plan;
  /** Render mode: the values are in files, not in the environment. */
  rendered: boolean;
  resolution: Resolution;
  environment: NodeJS.ProcessEnv;
  options: Options;
  logger: Logger;
  target?: TargetUser;
}

/** Exec mode's last steps: environment, files, privilege drop, exec. */
function launch({
  plan,
  resolution,
  environment,
  options,
  logger,
  target,
  rendered,
}: LaunchInput): never {
  const owner = target ?? { uid: process.geteuid!(), gid: process.getegid!() };
  const assembled = rendered
    ? {
        values: new Map(
          plan.bindings.map((binding) => [binding.variable, undefined]),
        ),
        files: [],
      }
    : assembleValues(plan.bindings, resolution, options.filesDir);
  const env = commandEnvironment(environment, assembled.values, {
    keepEnv: options.keepEnv,
    consumed: plan.consumed,
    ...(target ? { userVariables: userVariables(target) } : {}),
  });
  checkSize(env, options.command);
  writeValueFiles(assembled.files, options.filesDir, owner);
  if (target) {
    dropPrivileges(target);
    warnInheritable(logger, target);
  }

  const file = findCommand(options.command[0]!, env.PATH);
  const fields = summary(resolution, owner, target, file);
  const count = Object.keys(fields.variables).length;
  logEvent(
    logger,
    "info",
    "exec",
    fields,
    `resolved ${count} variables in ${resolution.durationMs} ms; exec ${file} as uid ${owner.uid}`,
  );
  execCommand(file, options.command, env);
}

function warnInheritable(logger: Logger, target: TargetUser) {
  const inheritable = inheritableCapabilities();
  if (inheritable === 0n || target.uid === 0) return;

  logEvent(
    logger,
    "warn",
    "privileges.inheritable",
    { capInh: inheritable.toString(16) },
    `the inheritable capability set is not empty (0x${inheritable.toString(16)}): a program with matching file capabilities would gain them; start the container with an empty inheritable set`,
  );
}

/**
 * Supervise mode's view of one resolution: the environment and files the
 * command gets. The command's own start sets HOME, USER and LOGNAME.
 */
function prepareCommand(
  {
    plan,
    resolution,
    environment,
    options,
    logger,
    target,
  }: Omit<LaunchInput, "rendered" | "target"> & {
    target: TargetUser | undefined;
  },
  first: boolean,
): Prepared {
  const owner = target ?? { uid: process.geteuid!(), gid: process.getegid!() };
  const assembled = assembleValues(plan.bindings, resolution, options.filesDir);
  const env = commandEnvironment(environment, assembled.values, {
    keepEnv: options.keepEnv,
    consumed: plan.consumed,
  });
  checkSize(env, options.command);
  if (first) {
    const fields = summary(resolution, owner, target, options.command[0]!);
    logEvent(
      logger,
      "info",
      "supervise.start",
      fields,
      `resolved ${Object.keys(fields.variables).length} variables in ${resolution.durationMs} ms; running ${options.command[0]} as uid ${owner.uid}`,
    );
  }
  return {
    env,
    files: assembled.files,
    writeFiles: () => writeValueFiles(assembled.files, options.filesDir, owner),
  };
}

function summary(
  resolution: Resolution,
  owner: { uid: number; gid: number },
  target: TargetUser | undefined,
  file: string,
) {
  const variables: Record<string, string> = {};
  for (const result of resolution.results) {
    if (result.outcome.status === "ok")
      variables[result.variable] = result.provider;
  }
  return {
    variables,
    durationMs: resolution.durationMs,
    uid: owner.uid,
    gid: owner.gid,
    ...(target?.name ? { user: target.name } : {}),
    command: file,
  };
}
