// Builds dist/secret-entrypoint.cjs (one file, runs on Node >= 22.15) and
// dist/secret-entrypoint, a Node single executable application for
// linux-x64 with its code cache on and NODE_OPTIONS ignored.
//
//   node build.mjs            both
//   node build.mjs --bundle   the bundle only
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

import * as esbuild from "esbuild";

const root = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(root, "dist");
const bundle = path.join(dist, "secret-entrypoint.cjs");
const executable = path.join(dist, "secret-entrypoint");
const { version } = JSON.parse(
  fs.readFileSync(path.join(root, "package.json"), "utf8"),
);

// Modules that only some runs need go into the bundle as text, compiled on
// first use (src/embedded.ts): a start without vault: or awssm: references
// then does not pay for parsing the AWS SDK and the Vault client.
const embedded = [
  "providers/vault.ts",
  "providers/awssm.ts",
  "providers/mock.ts",
];
const sharedPrefix = "entrypoint:";

const common = {
  bundle: true,
  platform: "node",
  target: "node22",
  format: "cjs",
  minify: true,
  // Names stay, so that error kinds (error.name) read well.
  keepNames: true,
  legalComments: "none",
  logLevel: "warning",
};

// An embedded module takes the entrypoint's own src/ modules from the main
// bundle rather than carrying copies of them.
function shareSources(shared) {
  return {
    name: "share-sources",
    setup(build) {
      build.onResolve({ filter: /\/src\/[^/]+\.ts$/ }, (args) => {
        const file = path.resolve(args.resolveDir, args.path);
        const id = sharedPrefix + path.relative(root, file);
        shared.add(id);
        return { path: id, external: true };
      });
    },
  };
}

async function buildEmbedded(entry) {
  const shared = new Set();
  const result = await esbuild.build({
    ...common,
    entryPoints: [path.join(root, entry)],
    write: false,
    plugins: [shareSources(shared)],
  });
  return {
    code: result.outputFiles[0].text,
    shared: [...shared],
    exports: await exportNames(entry),
  };
}

async function exportNames(entry) {
  const { metafile } = await esbuild.build({
    entryPoints: [path.join(root, entry)],
    format: "esm",
    write: false,
    metafile: true,
    logLevel: "silent",
  });
  return Object.values(metafile.outputs)[0].exports;
}

// In the main bundle, each embedded module is replaced by a stub that holds
// its text and hands it the shared modules.
function embedModules(builds) {
  return {
    name: "embed-modules",
    setup(build) {
      build.onLoad({ filter: /\/providers\/[^/]+\.ts$/ }, (args) => {
        const entry = path.relative(root, args.path);
        const module = builds.get(entry);
        if (module === undefined) return undefined;

        const loader = JSON.stringify(path.join(root, "src/embedded.ts"));
        const imports = module.shared.map((id, index) => {
          const file = path.join(root, id.slice(sharedPrefix.length));
          return `import * as shared${index} from ${JSON.stringify(file)};`;
        });
        const shared = module.shared.map(
          (id, index) => `${JSON.stringify(id)}: shared${index}`,
        );
        const contents = [
          ...imports,
          `import { loadEmbedded } from ${loader};`,
          `const loaded = loadEmbedded(${JSON.stringify(module.code)}, {${shared.join(", ")}}, ${JSON.stringify(entry)});`,
          ...module.exports.map(
            (name) => `export const ${name} = loaded.${name};`,
          ),
        ].join("\n");
        return { contents, loader: "js", resolveDir: path.dirname(args.path) };
      });
    },
  };
}

// The fuse Node's single executable support looks for in its binary.
const seaFuse = "NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2";

async function buildBundle() {
  const builds = new Map(
    await Promise.all(
      embedded.map(async (entry) => [entry, await buildEmbedded(entry)]),
    ),
  );
  await esbuild.build({
    ...common,
    entryPoints: [path.join(root, "src/bin.ts")],
    outfile: bundle,
    banner: { js: "#!/usr/bin/env node" },
    define: { __VERSION__: JSON.stringify(version) },
    plugins: [embedModules(builds)],
  });
  fs.chmodSync(bundle, 0o755);
}

function buildExecutable() {
  const blob = path.join(dist, "sea-prep.blob");
  const config = path.join(dist, "sea-config.json");
  fs.writeFileSync(
    config,
    JSON.stringify({
      main: bundle,
      output: blob,
      disableExperimentalSEAWarning: true,
      useCodeCache: true,
      // SIGUSR1 would otherwise open Node's debugger in a root process.
      execArgv: ["--disable-sigusr1"],
      execArgvExtension: "none",
    }),
  );
  // The blob must be made by the same Node that it is injected into.
  quietly(process.execPath, ["--experimental-sea-config", config]);
  fs.rmSync(executable, { force: true });
  fs.copyFileSync(process.execPath, executable);
  fs.chmodSync(executable, 0o755);
  quietly(process.execPath, [
    path.join(root, "node_modules/postject/dist/cli.js"),
    executable,
    "NODE_SEA_BLOB",
    blob,
    "--sentinel-fuse",
    seaFuse,
  ]);
  fs.rmSync(blob);
  fs.rmSync(config);
}

// postject warns about ELF notes it does not know; its output matters only
// when it fails.
function quietly(file, args) {
  try {
    execFileSync(file, args, { stdio: "pipe" });
  } catch (error) {
    process.stderr.write(`${error.stdout ?? ""}${error.stderr ?? ""}`);
    throw error;
  }
}

const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  console.error(
    `build.mjs needs Node >= 22.15 (this is ${process.version}); run it through npm (npm run build), which uses the Node of the dev dependencies`,
  );
  process.exit(1);
}
fs.mkdirSync(dist, { recursive: true });
await buildBundle();
if (!process.argv.includes("--bundle")) buildExecutable();
