import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";

import pino from "pino";
import { afterAll, beforeEach, describe, expect, it } from "vitest";

import { EntrypointError } from "../src/errors.ts";
import { parseEnvFile } from "../src/env-file.ts";
import { renderSecrets, type RenderOptions } from "../src/render.ts";
import {
  baseEnv,
  bundle,
  expectNoLeak,
  logLines,
  runEntrypoint,
} from "./support/run.ts";

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "render-"));
afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

let dir = "";
let logged = "";
let counter = 0;
beforeEach(() => {
  dir = path.join(scratch, `case-${counter++}`);
  logged = "";
});

function logger() {
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged += String(chunk);
      done();
    },
  });
  return pino({ level: "debug" }, sink);
}

function buffers(values: Record<string, string | Buffer>) {
  return new Map(
    Object.entries(values).map(([name, value]) => [
      name,
      Buffer.isBuffer(value) ? value : Buffer.from(value),
    ]),
  );
}

function render(
  values: Record<string, string | Buffer>,
  options: Partial<RenderOptions> = {},
) {
  return renderSecrets(
    buffers(values),
    { dir, format: "files", mode: 0o400, ...options },
    logger(),
  );
}

function versions(): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => name.startsWith("..") && name !== "..data")
    .sort();
}

function entries(): string[] {
  return fs
    .readdirSync(dir)
    .filter((name) => !name.startsWith(".."))
    .sort();
}

async function renderError(
  values: Record<string, string | Buffer>,
  options: Partial<RenderOptions>,
): Promise<EntrypointError> {
  try {
    await render(values, options);
  } catch (error) {
    if (error instanceof EntrypointError) {
      return error;
    }
    throw error;
  }
  throw new Error("expected the render to fail");
}

const pem = "-----BEGIN KEY-----\nAAAA\n-----END KEY-----\n";
const binary = Buffer.from([0xff, 0x00, 0xfe, 0x0a, 0x80]);

describe("renderSecrets: files", () => {
  it("writes one file per variable behind ..data", async () => {
    const result = await render({ DB_PASSWORD: "s3cr3t", TLS_KEY: pem });

    expect(result).toEqual({ changed: true });
    expect(entries()).toEqual(["DB_PASSWORD", "TLS_KEY"]);
    expect(fs.readlinkSync(path.join(dir, "DB_PASSWORD"))).toBe(
      "..data/DB_PASSWORD",
    );
    const version = fs.readlinkSync(path.join(dir, "..data"));
    expect(version).toMatch(
      /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9}\.[0-9a-f]{8}$/,
    );
    expect(versions()).toEqual([version]);
    expect(fs.readFileSync(path.join(dir, "DB_PASSWORD"), "utf8")).toBe(
      "s3cr3t",
    );
    expect(fs.readFileSync(path.join(dir, "TLS_KEY"), "utf8")).toBe(pem);
  });

  it("keeps binary values byte for byte", async () => {
    await render({ BLOB: binary });
    expect(fs.readFileSync(path.join(dir, "BLOB"))).toEqual(binary);
  });

  it("sets the file mode; the directory is open as kubelet's", async () => {
    await render({ A: "1" }, { mode: 0o440 });
    const version = path.join(dir, fs.readlinkSync(path.join(dir, "..data")));
    expect(fs.statSync(path.join(version, "A")).mode & 0o7777).toBe(0o440);
    expect(fs.statSync(version).mode & 0o7777).toBe(0o755);
  });

  it("defaults to read-only for the owner", async () => {
    await render({ A: "1" });
    const version = path.join(dir, fs.readlinkSync(path.join(dir, "..data")));
    expect(fs.statSync(path.join(version, "A")).mode & 0o7777).toBe(0o400);
  });

  const asRoot = it.skipIf(process.getuid?.() !== 0);

  asRoot("gives the files to uid and gid, keeps the directory", async () => {
    await render({ A: "1" }, { uid: 1234, gid: 5678 });
    const version = path.join(dir, fs.readlinkSync(path.join(dir, "..data")));
    const file = fs.statSync(path.join(version, "A"));
    expect([file.uid, file.gid, file.mode & 0o7777]).toEqual([
      1234, 5678, 0o400,
    ]);
    const folder = fs.statSync(version);
    expect([folder.uid, folder.gid]).toEqual([0, 0]);
  });

  asRoot("rewrites when the owner changed", async () => {
    const owner = { uid: 1234, gid: 5678 };
    await render({ A: "1" }, owner);
    expect(await render({ A: "1" }, owner)).toEqual({ changed: false });
    expect(await render({ A: "1" }, { ...owner, gid: 1234 })).toEqual({
      changed: true,
    });
  });

  it("refuses variable names that are not plain file names", async () => {
    for (const name of ["..data", ".hidden", "a/b", ""]) {
      const error = await renderError({ [name]: "x" }, {});
      expect(error.exitCode).toBe(65);
      expect(error.message).toBe(
        `cannot render variable ${JSON.stringify(name)} as a file: a file name cannot be empty, start with "." or hold "/"`,
      );
    }
  });

  it("refuses to replace a file it did not write", async () => {
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, "A"), "mine");
    const error = await renderError({ A: "1" }, {});
    expect(error.exitCode).toBe(78);
    expect(error.message).toBe(
      `failed to render ${dir}/A: it exists and was not written by secret-entrypoint; render into an empty directory`,
    );
    expect(fs.readFileSync(path.join(dir, "A"), "utf8")).toBe("mine");
  });
});

describe("renderSecrets: rewrites", () => {
  it("rewrites only when something changed", async () => {
    expect(await render({ A: "1", B: "2" })).toEqual({ changed: true });
    const first = versions();

    expect(await render({ B: "2", A: "1" })).toEqual({ changed: false });
    expect(versions()).toEqual(first);

    expect(await render({ A: "1", B: "3" })).toEqual({ changed: true });
    expect(versions()).not.toEqual(first);
    expect(versions()).toHaveLength(1);
  });

  it("rewrites when the mode or the set of names changed", async () => {
    await render({ A: "1" });
    expect(await render({ A: "1" }, { mode: 0o440 })).toEqual({
      changed: true,
    });
    expect(await render({ A: "1", B: "2" }, { mode: 0o440 })).toEqual({
      changed: true,
    });
    expect(await render({ B: "2" }, { mode: 0o440 })).toEqual({
      changed: true,
    });
    expect(entries()).toEqual(["B"]);
  });

  it("removes old versions and the links of removed variables", async () => {
    for (let i = 0; i < 5; i++) {
      await render({ A: `${i}`, [`ONLY_${i}`]: "x" });
    }
    expect(versions()).toHaveLength(1);
    expect(entries()).toEqual(["A", "ONLY_4"]);
    expect(fs.readFileSync(path.join(dir, "A"), "utf8")).toBe("4");
  });

  it("cleans up versions left by a run that died", async () => {
    fs.mkdirSync(path.join(dir, "..2001_01_01_00_00_00.000000000.deadbeef"), {
      recursive: true,
    });
    fs.symlinkSync("..nowhere", path.join(dir, "..data_tmp"));
    await render({ A: "1" });
    expect(versions()).toEqual([fs.readlinkSync(path.join(dir, "..data"))]);
  });

  it("replaces a ..data that points out of DIR without reading there", async () => {
    const outside = path.join(scratch, `outside-${counter}`);
    fs.mkdirSync(outside);
    fs.writeFileSync(path.join(outside, "A"), "1", { mode: 0o400 });
    fs.mkdirSync(dir);
    fs.symlinkSync(outside, path.join(dir, "..data"));
    expect(await render({ A: "1" })).toEqual({ changed: true });
    expect(versions()).toEqual([fs.readlinkSync(path.join(dir, "..data"))]);
    expect(fs.readFileSync(path.join(outside, "A"), "utf8")).toBe("1");
  });

  it("restores missing links when nothing else changed", async () => {
    await render({ A: "1" });
    fs.rmSync(path.join(dir, "A"));
    expect(await render({ A: "1" })).toEqual({ changed: false });
    expect(fs.readFileSync(path.join(dir, "A"), "utf8")).toBe("1");
  });

  it("logs what it wrote but never a value", async () => {
    await render({ A: "value-one" });
    await render({ A: "value-one" });
    const lines = logged
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => [line.event, line.msg])).toEqual([
      ["render.write", `rendered 1 file into ${dir}`],
      ["render.unchanged", "rendered secrets are unchanged"],
    ]);
    expect(lines[0]).toMatchObject({ dir, format: "files", entries: ["A"] });
    expect(logged).not.toContain("value-one");
  });
});

describe("renderSecrets: env and json", () => {
  const values = { B: "it's a\nmulti-line = # $x", A: "ünï🔑", EMPTY: "" };

  it("writes secrets.env that our parser reads back exactly", async () => {
    await render(values, { format: "env" });
    expect(entries()).toEqual(["secrets.env"]);
    const file = path.join(dir, "secrets.env");
    const text = fs.readFileSync(file, "utf8");
    expect(text).toBe(
      "A='ünï🔑'\nB='it'\\''s a\nmulti-line = # $x'\nEMPTY=''\n",
    );
    expect(Object.fromEntries(parseEnvFile(text, file))).toEqual(values);
  });

  it("writes secrets.json with the values as strings", async () => {
    await render(values, { format: "json" });
    expect(entries()).toEqual(["secrets.json"]);
    const text = fs.readFileSync(path.join(dir, "secrets.json"), "utf8");
    expect(JSON.parse(text)).toEqual(values);
    expect(Object.keys(JSON.parse(text) as object)).toEqual([
      "A",
      "B",
      "EMPTY",
    ]);
  });

  it("replaces the files of another format", async () => {
    await render(values, { format: "files" });
    await render(values, { format: "json" });
    expect(entries()).toEqual(["secrets.json"]);
  });

  for (const format of ["env", "json"] as const) {
    for (const [label, value] of [
      ["not UTF-8", Buffer.from([0xc3, 0x28])],
      ["a NUL byte", Buffer.from("a\0b")],
    ] as const) {
      it(`refuses ${label} in the ${format} format`, async () => {
        const error = await renderError({ GOOD: "x", BLOB: value }, { format });
        expect(error.exitCode).toBe(65);
        expect(error.message).toBe(
          `cannot render variable BLOB in the ${format} format: its value is binary (not UTF-8, or holds a NUL byte); set SECRET_ENTRYPOINT_RENDER_FORMAT=files`,
        );
        expect(fs.existsSync(dir)).toBe(false);
      });
    }
  }

  it("refuses names that sh cannot read in the env format", async () => {
    const error = await renderError({ "NOT-A-NAME": "x" }, { format: "env" });
    expect(error.exitCode).toBe(65);
    expect(error.message).toBe(
      'cannot write variable "NOT-A-NAME" to an env file: a name must match [A-Za-z_][A-Za-z0-9_]*; use the files or json format',
    );
  });
});

// A reader that reads each set the way the docs tell people to: resolve
// ..data once, then read the files inside that version. A version removed
// under its feet is a miss (it reads again), never a mixed set.
const readerScript = `
  end=$(( $(date +%s) + 30 ))
  while [ ! -e "$1/stop" ] && [ "$(date +%s)" -lt "$end" ]; do
    v=$(readlink "$1/..data") || continue
    a=$(cat "$1/$v/A" 2>/dev/null) || { echo miss; continue; }
    b=$(cat "$1/$v/B" 2>/dev/null) || { echo miss; continue; }
    c=$(cat "$1/$v/C" 2>/dev/null) || { echo miss; continue; }
    echo "$a $b $c"
  done
`;

/** The sets a reader printed ("a7 b7 c7") whose parts disagree. */
function mixedSets(sets: string[]): string[] {
  return sets.filter((line) => {
    const [a, b, c] = line.split(" ");
    return b !== a?.replace("a", "b") || c !== a?.replace("a", "c");
  });
}

describe("renderSecrets: atomic swap", () => {
  it("never shows a reader a mix of old and new values", async () => {
    await render({ A: "a0", B: "b0", C: "c0" });
    const child = spawn("sh", ["-c", readerScript, "sh", dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (chunk) => (output += chunk));
    const exited = new Promise((resolve) => child.on("close", resolve));

    // Keep rewriting until the reader has seen many sets, bounded in time.
    const deadline = Date.now() + 20_000;
    let generation = 0;
    while (Date.now() < deadline && output.split("\n").length < 400) {
      generation++;
      const g = generation;
      await render({ A: `a${g}`, B: `b${g}`, C: `c${g}` });
      await new Promise((resolve) => setImmediate(resolve));
    }
    fs.writeFileSync(path.join(dir, "stop"), "");
    await exited;

    const sets = output.split("\n").filter((line) => line && line !== "miss");
    expect(generation).toBeGreaterThan(50);
    expect(new Set(sets).size).toBeGreaterThan(10);
    expect(mixedSets(sets)).toEqual([]);
  });
});

// ---- Through the built bundle ------------------------------------------

describe("--render through the bundle", () => {
  let sources = "";
  beforeEach(() => {
    sources = path.join(scratch, `sources-${counter}`);
    fs.mkdirSync(sources);
  });

  /** Writes the source secret `app.json` atomically, as a mounted volume would change. */
  function writeSource(values: Record<string, string>) {
    const temp = path.join(sources, ".app.json.tmp");
    fs.writeFileSync(temp, JSON.stringify(values));
    fs.renameSync(temp, path.join(sources, "app.json"));
  }

  function sourceEnv(names: string[], extra: Record<string, string> = {}) {
    return baseEnv({
      SECRET_ENTRYPOINT_FILE_ROOTS: sources,
      SECRET_ENTRYPOINT_LOG_LEVEL: "debug",
      ...Object.fromEntries(
        names.map((name) => [
          name,
          `file:${sources}/app.json#${name.toLowerCase()}`,
        ]),
      ),
      ...extra,
    });
  }

  function startRefresh(names: string[], interval: string) {
    const child = spawn(
      process.execPath,
      [bundle, "--render", dir, "--refresh", interval],
      { env: sourceEnv(names), stdio: ["ignore", "ignore", "pipe"] },
    );
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) =>
      child.on("close", (code) => resolve(code)),
    );
    return { child, exited, stderr: () => stderr };
  }

  async function until(check: () => boolean, what: string) {
    const deadline = Date.now() + 10_000;
    while (!check()) {
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  function events(stderr: string, event: string) {
    return logLines(stderr).filter((line) => line.event === event);
  }

  it.each([
    ["files", "A", "a-1\n'quoted'"],
    ["env", "secrets.env", "A='a-1\n'\\''quoted'\\'''\nB='b=#$'\n"],
    [
      "json",
      "secrets.json",
      '{\n  "A": "a-1\\n\'quoted\'",\n  "B": "b=#$"\n}\n',
    ],
  ])("renders the %s format", async (format, file, content) => {
    writeSource({ a: "a-1\n'quoted'", b: "b=#$" });
    const result = await runEntrypoint(["--render", dir], {
      env: sourceEnv(["A", "B"], { SECRET_ENTRYPOINT_RENDER_FORMAT: format }),
    });
    expect(result.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, file), "utf8")).toBe(content);
    expect(events(result.stderr, "render.write")).toHaveLength(1);
    expectNoLeak(result, ["a-1", "b=#$"]);
  });

  it("sets SECRET_ENTRYPOINT_RENDER_MODE and gives the files to --user", async () => {
    writeSource({ a: "1" });
    const asRoot = process.getuid?.() === 0;
    const result = await runEntrypoint(
      ["--render", dir, ...(asRoot ? ["--user", "1234:5678"] : [])],
      { env: sourceEnv(["A"], { SECRET_ENTRYPOINT_RENDER_MODE: "0440" }) },
    );
    expect(result.code).toBe(0);
    const stat = fs.statSync(path.join(dir, "A"));
    expect(stat.mode & 0o7777).toBe(0o440);
    if (asRoot) {
      expect([stat.uid, stat.gid]).toEqual([1234, 5678]);
    }
  });

  it("refreshes and rewrites only on change", async () => {
    writeSource({ a: "1", b: "1" });
    const run = startRefresh(["A", "B"], "50ms");
    await until(
      () => events(run.stderr(), "render.unchanged").length >= 3,
      "unchanged rounds",
    );
    expect(events(run.stderr(), "render.write")).toHaveLength(1);
    const first = fs.readlinkSync(path.join(dir, "..data"));

    writeSource({ a: "2", b: "2" });
    await until(
      () => events(run.stderr(), "render.write").length === 2,
      "a rewrite",
    );
    const unchanged = events(run.stderr(), "render.unchanged").length;
    await until(
      () => events(run.stderr(), "render.unchanged").length >= unchanged + 3,
      "unchanged rounds after the rewrite",
    );
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);

    expect(events(run.stderr(), "render.write")).toHaveLength(2);
    expect(fs.readFileSync(path.join(dir, "A"), "utf8")).toBe("2");
    expect(versions()).toEqual([fs.readlinkSync(path.join(dir, "..data"))]);
    expect(versions()).not.toContain(first);
  });

  it("never shows a reader a mixed set while refreshing", async () => {
    writeSource({ a: "a0", b: "b0", c: "c0" });
    const run = startRefresh(["A", "B", "C"], "10ms");
    await until(
      () => fs.existsSync(path.join(dir, "..data")),
      "the first render",
    );
    const reader = spawn("sh", ["-c", readerScript, "sh", dir], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    reader.stdout.setEncoding("utf8").on("data", (chunk) => (output += chunk));
    const readerExited = new Promise((resolve) => reader.on("close", resolve));

    let generation = 0;
    while (events(run.stderr(), "render.write").length < 60) {
      generation++;
      writeSource({
        a: `a${generation}`,
        b: `b${generation}`,
        c: `c${generation}`,
      });
      await new Promise((resolve) => setTimeout(resolve, 15));
      if (generation > 2000) throw new Error("the refresh did not keep up");
    }
    fs.writeFileSync(path.join(dir, "stop"), "");
    await readerExited;
    run.child.kill("SIGTERM");
    expect(await run.exited).toBe(0);

    const sets = output.split("\n").filter((line) => line && line !== "miss");
    expect(new Set(sets).size).toBeGreaterThan(10);
    expect(mixedSets(sets)).toEqual([]);
  });
});
