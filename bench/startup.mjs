// Start-up cost of the entrypoint, measured side by side in one run: each
// case starts `true` (or, for the baseline, is `node -e 0`) many times, the
// cases interleaved round by round so that a busy moment hits all of them.
// Prints the median wall time of each case and its ratio to `node -e 0`.
//
//   npm run bench            (builds first)
//   node bench/startup.mjs [rounds]
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bundle = path.join(root, "dist/secret-entrypoint.cjs");
const executable = path.join(root, "dist/secret-entrypoint");
const rounds = Number(process.argv[2] ?? 40);

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "bench-"));
const mock = path.join(scratch, "mock.yaml");
fs.writeFileSync(
  mock,
  Array.from(
    { length: 10 },
    (_, i) => `vault:secret/app${i}: { password: value-${i}, user: u${i} }`,
  ).join("\n") + "\n",
);
const secrets = path.join(scratch, "secrets");
fs.mkdirSync(secrets);
for (let i = 0; i < 10; i++) {
  fs.writeFileSync(path.join(secrets, `s${i}`), `file-value-${i}\n`);
}

const quiet = { SECRET_ENTRYPOINT_LOG_LEVEL: "error" };
const mockRefs = Object.fromEntries(
  Array.from({ length: 10 }, (_, i) => [
    `V${i}`,
    `vault:secret/app${i}#password`,
  ]),
);
const fileRefs = Object.fromEntries(
  Array.from({ length: 10 }, (_, i) => [`F${i}`, `file:${secrets}/s${i}`]),
);
const node = process.execPath;

const cases = [
  ["node -e 0", [node, "-e", "0"], {}],
  ["bundle, no references", [node, bundle, "true"], quiet],
  [
    "bundle, 10 mock references",
    [node, bundle, "--mock", mock, "true"],
    { ...quiet, ...mockRefs },
  ],
  [
    "bundle, 10 file references",
    [node, bundle, "true"],
    { ...quiet, ...fileRefs, SECRET_ENTRYPOINT_FILE_ROOTS: secrets },
  ],
  ["executable, no references", [executable, "true"], quiet],
  [
    "executable, 10 mock references",
    [executable, "--mock", mock, "true"],
    { ...quiet, ...mockRefs },
  ],
];

const times = new Map(cases.map(([name]) => [name, []]));
for (let round = 0; round < rounds; round++) {
  for (const [name, [file, ...args], extra] of cases) {
    const started = process.hrtime.bigint();
    const result = spawnSync(file, args, {
      env: { PATH: process.env.PATH, ...extra },
      stdio: ["ignore", "ignore", "pipe"],
    });
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.status !== 0) {
      throw new Error(`${name} failed (${result.status}): ${result.stderr}`);
    }
    times.get(name).push(elapsed);
  }
}
fs.rmSync(scratch, { recursive: true });

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};
const baseline = median(times.get("node -e 0"));
console.log(
  `${rounds} rounds, Node ${process.version}, ${os.cpus().length} cores\n`,
);
console.log(
  `${"case".padEnd(34)}${"median".padStart(10)}${"ratio".padStart(8)}`,
);
for (const [name] of cases) {
  const ms = median(times.get(name));
  console.log(
    `${name.padEnd(34)}${`${ms.toFixed(1)} ms`.padStart(10)}${`${(ms / baseline).toFixed(2)}x`.padStart(8)}`,
  );
}
