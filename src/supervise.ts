/**
 * Supervise mode: the entrypoint stays as the command's parent. It forwards
 * signals, exits with the command's status (128+n after signal n), and with
 * --refresh resolves again on a timer: a changed value restarts the command,
 * or, when only `as=file` files changed and --refresh-signal names a
 * signal, sends it that signal so that it reads the files again.
 *
 * The command is started through the entrypoint itself, in exec mode, with
 * the resolved environment and `--skip '*'`: that start drops privileges
 * exactly as exec mode does, supplementary groups included (a spawn with a
 * uid and gid would lose them), and then becomes the command. The
 * supervisor keeps its own privileges, so that a refresh can read what the
 * first resolution read.
 *
 * Node cannot wait for processes it did not start, so as pid 1 this mode
 * does not reap orphaned grandchildren the way tini does.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import fs from "node:fs";
import os from "node:os";
import { isSea } from "node:sea";
import { setTimeout as sleep } from "node:timers/promises";

import { ExitCode } from "./errors.ts";
import { logEvent, logRefreshFailure, type Logger } from "./logging.ts";
import type { Options } from "./options.ts";
import type { Resolution } from "./resolve.ts";
import type { TargetUser } from "./users.ts";
import type { ValueFile } from "./value-files.ts";

/** The command's environment and files for one resolution. */
export interface Prepared {
  env: Record<string, string>;
  files: readonly ValueFile[];
  /** Writes the `as=file` files. */
  writeFiles(): void;
}

export interface SuperviseInput {
  options: Options;
  logger: Logger;
  target?: TargetUser;
  resolve(): Promise<Resolution>;
  /** `first` is the start; later calls are refresh rounds. */
  prepare(resolution: Resolution, first: boolean): Prepared;
}

// Every signal a supervisor is expected to pass on (tini's list, less those
// that stop or kill it).
const forwarded: NodeJS.Signals[] = [
  "SIGTERM",
  "SIGINT",
  "SIGHUP",
  "SIGQUIT",
  "SIGUSR1",
  "SIGUSR2",
  "SIGWINCH",
  "SIGALRM",
  "SIGCONT",
];

// How long a command being restarted may take to stop before SIGKILL.
const stopGraceMs = 10_000;

/** Runs the command under supervision; resolves with the exit status. */
export async function supervise(input: SuperviseInput): Promise<number> {
  const first = input.prepare(await input.resolve(), true);
  first.writeFiles();
  const supervisor = new Supervisor(input, first.env);
  for (const signal of forwarded) {
    process.on(signal, () => supervisor.forward(signal));
  }
  supervisor.start();
  if (input.options.refreshMs !== undefined) {
    void refreshLoop(input, supervisor, first);
  }
  return supervisor.finished;
}

class Supervisor {
  readonly finished: Promise<number>;
  private finish!: (status: number) => void;
  private child: ChildProcess | undefined;
  /** The child's /proc cmdline until it has become the command. */
  private startingCmdline = "";
  private pending: NodeJS.Signals[] = [];
  private flushing: NodeJS.Timeout | undefined;
  private env: Record<string, string>;
  private restarting = false;
  private stopping = false;
  done = false;

  constructor(
    private readonly input: SuperviseInput,
    env: Record<string, string>,
  ) {
    this.env = env;
    this.finished = new Promise((resolve) => {
      this.finish = (status) => {
        this.done = true;
        resolve(status);
      };
    });
  }

  start(): void {
    const [file, ...args] = commandLine(this.input);
    const child = spawn(file!, args, { env: this.env, stdio: "inherit" });
    this.child = child;
    this.startingCmdline = [file, ...args].join("\u0000") + "\u0000";
    child.on("exit", (code, signal) => {
      if (child === this.child && !this.restarting) {
        this.finish(exitStatus(code, signal));
      }
    });
    child.on("error", () => this.finish(ExitCode.notExecutable));
    logEvent(
      this.input.logger,
      "debug",
      "supervise.start",
      { childPid: child.pid },
      `started the command as pid ${child.pid}`,
    );
  }

  forward(signal: NodeJS.Signals): void {
    // A stop asked for during a restart means: no new command. Otherwise
    // the command decides what TERM or INT means to it.
    const stop = signal === "SIGTERM" || signal === "SIGINT";
    if (stop && this.restarting) this.stopping = true;
    if (!stop && this.isStarting()) {
      this.hold(signal);
      return;
    }
    this.child?.kill(signal);
  }

  // Until the child has exec'd the command, it is the entrypoint starting
  // up, where a HUP or USR2 would end it rather than reach the command:
  // such signals wait, and are sent once the command runs.
  private isStarting(): boolean {
    const pid = this.child?.pid;
    if (pid === undefined) return false;
    try {
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, "latin1");
      return cmdline === this.startingCmdline;
    } catch {
      return false;
    }
  }

  private hold(signal: NodeJS.Signals) {
    this.pending.push(signal);
    this.flushing ??= setInterval(() => {
      if (this.isStarting()) return;

      clearInterval(this.flushing);
      this.flushing = undefined;
      for (const held of this.pending.splice(0)) this.child?.kill(held);
    }, 10);
  }

  /** Stops the command (SIGTERM, then SIGKILL) and starts it anew. */
  async restart(env: Record<string, string>): Promise<void> {
    const old = this.child;
    if (old === undefined || this.done) return;

    this.restarting = true;
    const gone = hasExited(old) ? Promise.resolve() : once(old, "exit");
    old.kill("SIGTERM");
    const killer = setTimeout(() => old.kill("SIGKILL"), stopGraceMs);
    await gone;
    clearTimeout(killer);
    this.restarting = false;
    if (this.stopping) {
      this.finish(exitStatus(old.exitCode, old.signalCode));
      return;
    }
    this.env = env;
    this.start();
  }
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

// A shell's convention, and tini's: 128+n for a death by signal n.
function exitStatus(code: number | null, signal: NodeJS.Signals | null) {
  if (code !== null) return code;

  return 128 + (signal === null ? 0 : os.constants.signals[signal]);
}

// The entrypoint itself in exec mode, with nothing left to resolve.
function commandLine({ options, target }: SuperviseInput): string[] {
  // --disable-sigusr1: the starting child is root and holds the values; a
  // forwarded SIGUSR1 must not open Node's debugger in it. The single
  // executable has the flag built in.
  const self = isSea()
    ? [process.execPath]
    : [
        process.execPath,
        ...new Set([...process.execArgv, "--disable-sigusr1"]),
        process.argv[1]!,
      ];
  const quiet = ["trace", "debug"].includes(options.logLevel)
    ? options.logLevel
    : "error";
  return [
    ...self,
    "--skip=*",
    `--log-level=${quiet}`,
    `--log-format=${options.logFormat}`,
    ...(options.keepEnv.length ? [`--keep-env=${options.keepEnv}`] : []),
    ...(target ? [`--user=${target.spec}`] : []),
    "--",
    ...options.command,
  ];
}

// A change of the environment needs a restart: a running process cannot be
// given new variables. A change of files alone can be announced by signal.
async function refreshLoop(
  input: SuperviseInput,
  supervisor: Supervisor,
  first: Prepared,
) {
  const { refreshMs, refreshSignal } = input.options;
  let current = fingerprints(first);
  while (!supervisor.done) {
    await sleep(refreshMs!);
    if (supervisor.done) return;

    try {
      const next = input.prepare(await input.resolve(), false);
      const prints = fingerprints(next);
      const envChanged = prints.env !== current.env;
      if (!envChanged && prints.files === current.files) continue;

      next.writeFiles();
      if (!envChanged && refreshSignal !== undefined) {
        announce(input.logger, `files changed; sent ${refreshSignal}`);
        supervisor.forward(refreshSignal);
      } else {
        announce(input.logger, "values changed; restarting the command");
        await supervisor.restart(next.env);
      }
      // Only now: a round that failed half-way is tried again next time.
      current = prints;
    } catch (error) {
      logRefreshFailure(
        input.logger,
        error,
        "the command keeps the values it has",
      );
    }
  }
}

function announce(logger: Logger, message: string) {
  logEvent(logger, "info", "supervise.refresh", {}, message);
}

// Digests, so that no value is kept longer than a round needs it.
function fingerprints(prepared: Prepared) {
  const env = createHash("sha256");
  for (const name of Object.keys(prepared.env).sort()) {
    env.update(`${name}\u0000${prepared.env[name]}\u0000`);
  }
  const files = createHash("sha256");
  for (const file of prepared.files) {
    files.update(`${file.path}\u0000`).update(file.value).update("\u0000");
  }
  return { env: env.digest("hex"), files: files.digest("hex") };
}
