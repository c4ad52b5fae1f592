/**
 * A container without Docker: a root filesystem made of busybox-static and,
 * when asked, the single executable with the shared libraries it needs,
 * entered the way a runtime would start it. The process runs as pid 1 of a
 * new pid namespace, in a new mount namespace where the root is a read-only
 * bind mount, /proc and a small /dev are mounted, and chosen folders are
 * tmpfs; capsh chroots into it and drops capabilities from the bounding set
 * before the exec, so the program starts with only the ones kept.
 *
 * Needs root (mounts and namespaces), util-linux's unshare, capsh
 * (libcap2-bin) and busybox-static; `containerSupport` says what is missing.
 */
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import type { RunResult } from "./run.ts";

/** Where Debian's busybox-static puts the static busybox. */
export const busybox = "/bin/busybox";

// The applets the tests use, linked as in a busybox image.
const applets = [
  "sh",
  "id",
  "cat",
  "ls",
  "stat",
  "touch",
  "grep",
  "test",
  "echo",
  "readlink",
  "env",
];

// Device nodes bound from the host, as runtimes provide them.
const devices = ["null", "zero", "random", "urandom"];

/** Why container runs cannot work on this machine, or null when they can. */
export function containerSupport(): string | null {
  if (process.getuid?.() !== 0) {
    return "container runs need root for namespaces and mounts";
  }
  for (const tool of ["unshare", "capsh", "mount"]) {
    if (which(tool) === null) {
      return `container runs need ${tool} (util-linux, libcap2-bin)`;
    }
  }
  if (!isStaticBusybox()) {
    return `container runs need a static ${busybox}: apt-get install busybox-static`;
  }
  return null;
}

function which(tool: string): string | null {
  try {
    return execFileSync("sh", ["-c", `command -v ${tool}`], {
      encoding: "utf8",
    }).trim();
  } catch {
    return null;
  }
}

function isStaticBusybox(): boolean {
  if (!fs.existsSync(busybox)) {
    return false;
  }
  // ldd exits non-zero on a static binary.
  try {
    execFileSync("ldd", [busybox], { stdio: "pipe" });
    return false;
  } catch {
    return true;
  }
}

/** A root filesystem in a scratch folder. */
export interface Rootfs {
  dir: string;
  remove(): void;
}

export interface RootfsOptions {
  /** A dynamically linked program to copy to `at`, with its libraries. */
  program?: { from: string; at: string };
  /** More files, by their path inside the root. */
  files?: Record<string, string>;
  /** Empty folders to create, e.g. mount points for tmpfs. */
  dirs?: string[];
}

/**
 * Builds a root filesystem: busybox and its applets in /bin, empty /proc,
 * /dev, /tmp and /run, no /etc/passwd or /etc/group.
 */
export function makeRootfs(options: RootfsOptions = {}): Rootfs {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "rootfs-"));
  for (const folder of [
    "bin",
    "proc",
    "dev",
    "tmp",
    "run",
    "etc",
    ...(options.dirs ?? []),
  ]) {
    fs.mkdirSync(path.join(dir, folder), { recursive: true });
  }
  fs.copyFileSync(busybox, path.join(dir, "bin/busybox"));
  for (const applet of applets) {
    fs.symlinkSync("busybox", path.join(dir, "bin", applet));
  }
  if (options.program) {
    copyWithLibraries(dir, options.program.from, options.program.at);
  }
  for (const [file, content] of Object.entries(options.files ?? {})) {
    fs.mkdirSync(path.join(dir, path.dirname(file)), { recursive: true });
    fs.writeFileSync(path.join(dir, file), content);
  }
  // Mode 755 and owned by root, as an image's root is.
  fs.chmodSync(dir, 0o755);
  return {
    dir,
    remove: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function copyWithLibraries(root: string, from: string, at: string): void {
  copyInto(root, from, at);
  fs.chmodSync(path.join(root, at), 0o755);
  for (const library of sharedLibraries(from)) {
    copyInto(root, library, library);
  }
}

/** The shared libraries and loader that ldd says `program` loads. */
export function sharedLibraries(program: string): string[] {
  const output = execFileSync("ldd", [program], { encoding: "utf8" });
  const libraries: string[] = [];
  for (const line of output.split("\n")) {
    // "libm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x...)" or the loader
    // "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
    const match = /(?:=>\s*)?(\/\S+)\s+\(0x[0-9a-f]+\)/.exec(line);
    if (match?.[1]) {
      libraries.push(match[1]);
    }
  }
  return libraries;
}

// Copies the file's content (not a symlink) to the same path in the root.
function copyInto(root: string, from: string, at: string): void {
  const target = path.join(root, at);
  fs.mkdirSync(path.dirname(target), { recursive: true });
  fs.copyFileSync(fs.realpathSync(from), target);
}

/** How to start a program in the root filesystem. */
export interface ContainerRun {
  root: string;
  /** Absolute path inside the root, then its arguments. */
  command: string[];
  /** The program's whole environment. */
  env?: Record<string, string>;
  /** Capabilities kept in the bounding set, e.g. ["cap_setuid"]. */
  keepCaps: string[];
  /** Folders inside the root that get an empty tmpfs (mode 1777). */
  tmpfs?: string[];
  timeoutMs?: number;
}

// Runs in the new namespaces as pid 1 until its last exec. The root is bound
// onto itself first because only a mount point can be remounted read-only;
// the mounts below it keep their own flags, as in a container.
const setupScript = `
set -eu
root=$1; shift
mount --bind "$root" "$root"
mount -t proc proc "$root/proc"
mount -t tmpfs -o mode=0755,size=64k tmpfs "$root/dev"
for device in ${devices.join(" ")}; do
  touch "$root/dev/$device"
  mount --bind "/dev/$device" "$root/dev/$device"
done
for folder in $TMPFS; do
  mount -t tmpfs -o mode=1777,size=4m tmpfs "$root$folder"
done
mount -o remount,bind,ro "$root"
exec "$@"
`;

/** Runs `command` in the root filesystem and collects its output. */
export function runContainer(run: ContainerRun): Promise<RunResult> {
  const capsh = which("capsh")!;
  const drop = boundingSet().filter((cap) => !run.keepCaps.includes(cap));
  const envArgs = Object.entries(run.env ?? {}).map(
    ([name, value]) => `${name}=${value}`,
  );
  const [program, ...args] = run.command;
  const argv = [
    "--pid",
    "--fork",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    setupScript,
    "setup",
    run.root,
    "env",
    "-i",
    ...envArgs,
    capsh,
    `--chroot=${run.root}`,
    ...(drop.length > 0 ? [`--drop=${drop.join(",")}`] : []),
    `--shell=${program}`,
    "--",
    ...args,
  ];
  return collect(
    spawn("unshare", argv, {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        TMPFS: (run.tmpfs ?? []).join(" "),
      },
      stdio: ["ignore", "pipe", "pipe"],
    }),
    run.timeoutMs ?? 30_000,
  );
}

/** The capabilities in this process's bounding set, as capsh names them. */
export function boundingSet(): string[] {
  const output = execFileSync(which("capsh")!, ["--print"], {
    encoding: "utf8",
  });
  const line = output
    .split("\n")
    .find((text) => text.startsWith("Bounding set ="));
  return (line?.slice("Bounding set =".length) ?? "")
    .split(",")
    .filter(Boolean);
}

function collect(
  child: ReturnType<typeof spawn>,
  timeoutMs: number,
): Promise<RunResult> {
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (chunk) => (stdout += chunk));
  child.stderr!.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ pid: child.pid ?? -1, code, signal, stdout, stderr });
    });
  });
}
