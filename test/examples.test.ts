/**
 * The examples people copy must work: YAML that parses, Kubernetes objects
 * that pass the Kubernetes schemas, and images, commands, options and
 * references that agree with what the build makes and the entrypoint parses.
 */
import fs from "node:fs";
import path from "node:path";

import * as esbuild from "esbuild";
import { Deployment } from "kubernetes-models/apps/v1";
import { ServiceAccount } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import YAML from "yaml";

import { readSettings } from "../providers/vault/settings.ts";
import { envName, optionSpecs, parseOptions } from "../src/options.ts";
import { parseValue } from "../src/references.ts";
import { renderFileNames } from "../src/render.ts";
import { executable, root } from "./support/run.ts";

const examples = path.join(root, "examples");
const dockerDir = path.join(examples, "docker");
const kubernetesDir = path.join(examples, "kubernetes");

function yamlFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((file) => /\.ya?ml$/.test(file))
    .map((file) => path.join(dir, file))
    .sort();
}

function parseAll(file: string): unknown[] {
  const documents = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  return documents.map((document) => {
    expect(document.errors, file).toEqual([]);
    return document.toJS() as unknown;
  });
}

// Every SECRET_ENTRYPOINT_* name something reads: the option table and the
// Vault provider's settings.
const vaultSettingNames = [
  ...fs
    .readFileSync(path.join(root, "providers/vault/settings.ts"), "utf8")
    .matchAll(/\$\{prefix\}([A-Z_]+)/g),
].map(([, name]) => `SECRET_ENTRYPOINT_VAULT_${name}`);
const knownSettings = new Set([
  ...optionSpecs.map((spec) => envName(spec.name)),
  ...vaultSettingNames,
]);

/** Checks what the entrypoint would check first: settings and references. */
function expectValidEnvironment(env: Record<string, string>, where: string) {
  for (const name of Object.keys(env)) {
    if (name.startsWith("SECRET_ENTRYPOINT_")) {
      expect(knownSettings, `${where}: ${name}`).toContain(name);
    }
  }
  const references = Object.values(env).flatMap(
    (value) =>
      parseValue(value, { fileRoots: ["/run/secrets"] })?.filter(
        (part) => typeof part !== "string",
      ) ?? [],
  );
  if (references.some((reference) => reference.scheme === "vault")) {
    expect(() => readSettings(env), where).not.toThrow();
  }
  if (references.some((reference) => reference.scheme === "awssm")) {
    expect(env.AWS_REGION, `${where}: AWS_REGION`).toMatch(
      /^[a-z]+-[a-z]+-\d$/,
    );
  }
  return references;
}

describe("every YAML file of the examples", () => {
  it.each(yamlFiles(examples))("%s parses", (file) => {
    expect(parseAll(file).length).toBeGreaterThan(0);
  });
});

// ---- Docker ------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

/** The stages of a Dockerfile, each a list of instructions. */
function parseDockerfile(text: string): Map<string, Instruction[]> {
  const stages = new Map<string, Instruction[]>();
  let current: Instruction[] = [];
  const logical = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  for (const line of logical) {
    const [, keyword = "", args = ""] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === "FROM") {
      current = [];
      stages.set(/\bAS\s+(\S+)$/i.exec(args)?.[1] ?? "", current);
    }
    current.push({ keyword: keyword.toUpperCase(), args });
  }
  return stages;
}

function instruction(stage: Instruction[], keyword: string): string[] {
  return stage.filter((i) => i.keyword === keyword).map((i) => i.args);
}

function copies(stage: Instruction[]) {
  return instruction(stage, "COPY").map((args) => {
    const words = args.split(/\s+/);
    const from = words.find((word) => word.startsWith("--from="))?.slice(7);
    const paths = words.filter((word) => !word.startsWith("--"));
    return { from, sources: paths.slice(0, -1), dest: paths.at(-1)! };
  });
}

const dockerfile = parseDockerfile(
  fs.readFileSync(path.join(dockerDir, "Dockerfile"), "utf8"),
);
const buildStage = dockerfile.get("build")!;
const runtimeStage = dockerfile.get("runtime")!;
const workdir = instruction(buildStage, "WORKDIR")[0]!;
const entrypointArgv = JSON.parse(
  instruction(runtimeStage, "ENTRYPOINT")[0]!,
) as string[];
const installedAt = entrypointArgv[0]!;

describe("examples/docker/Dockerfile", () => {
  it("builds with npm ci and build.mjs on the Node major of package.json", () => {
    const pkg = JSON.parse(
      fs.readFileSync(path.join(root, "package.json"), "utf8"),
    ) as { devDependencies: Record<string, string> };
    const major = /^\^?(\d+)\./.exec(pkg.devDependencies.node!)?.[1];
    expect(instruction(buildStage, "FROM")[0]).toMatch(
      new RegExp(
        `^--platform=linux/amd64 node:${major}-bookworm-slim AS build$`,
      ),
    );
    expect(instruction(buildStage, "RUN")).toEqual([
      "npm ci && node build.mjs && ./dist/secret-entrypoint --version",
    ]);
  });

  it("copies every file the bundle is built from", async () => {
    const copied = copies(buildStage).flatMap((copy) => copy.sources);
    const result = await esbuild.build({
      absWorkingDir: root,
      entryPoints: ["src/bin.ts"],
      bundle: true,
      platform: "node",
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const inputs = Object.keys(result.metafile.inputs).filter(
      (input) => !input.startsWith("node_modules/"),
    );
    expect(inputs.length).toBeGreaterThan(5);
    const missing = [...inputs, "build.mjs", "package-lock.json"].filter(
      (input) =>
        !copied.some(
          (source) => input === source || input.startsWith(`${source}/`),
        ),
    );
    expect(missing).toEqual([]);
  });

  it("copies the single executable from where build.mjs writes it", () => {
    const built = path.relative(root, executable);
    expect(built).toBe("dist/secret-entrypoint");
    expect(fs.readFileSync(path.join(root, "build.mjs"), "utf8")).toContain(
      'path.join(dist, "secret-entrypoint")',
    );
    const copy = copies(runtimeStage).find((c) => c.from === "build");
    expect(copy).toEqual({
      from: "build",
      sources: [path.posix.join(workdir, built)],
      dest: installedAt,
    });
    // The RUN line's --version check runs the same path.
    expect(instruction(buildStage, "RUN")[0]).toContain(`./${built} --version`);
  });

  it("runs the entrypoint as a non-root numeric user on a glibc base", () => {
    expect(instruction(runtimeStage, "FROM")).toEqual([
      "--platform=linux/amd64 debian:bookworm-slim AS runtime",
    ]);
    expect(instruction(runtimeStage, "USER")).toEqual(["10001:10001"]);
    expect(entrypointArgv).toEqual(["/usr/local/bin/secret-entrypoint", "--"]);
  });

  it("copies an executable application that CMD runs", () => {
    const cmd = JSON.parse(instruction(runtimeStage, "CMD")[0]!) as string[];
    const copy = copies(runtimeStage).find((c) => c.dest === cmd[0]);
    const source = path.join(root, copy!.sources[0]!);
    expect(fs.statSync(source).mode & 0o111).toBe(0o111);
  });
});

interface ComposeService {
  build?: { context: string; dockerfile: string };
  image?: string;
  user?: string;
  read_only?: boolean;
  tmpfs?: string[];
  security_opt?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  secrets?: string[];
  environment?: Record<string, string>;
  command?: string[];
}

interface Compose {
  services: Record<string, ComposeService>;
  secrets: Record<string, { file: string }>;
}

const compose = parseAll(path.join(dockerDir, "compose.yaml"))[0] as Compose;
const appServices = Object.entries(compose.services).filter(
  ([, service]) => service.image === "secret-entrypoint-example:latest",
);

// Compose replaces `$$` with `$` before the container sees the value.
function containerEnv(service: ComposeService): Record<string, string> {
  return Object.fromEntries(
    Object.entries(service.environment ?? {}).map(([name, value]) => [
      name,
      String(value).replaceAll("$$", "$"),
    ]),
  );
}

describe("examples/docker/compose.yaml", () => {
  it("builds the image from the example Dockerfile", () => {
    const builders = appServices.filter(([, service]) => service.build);
    expect(builders.map(([name]) => name)).toEqual(["app"]);
    const build = builders[0]![1].build!;
    expect(path.resolve(dockerDir, build.context)).toBe(root);
    expect(path.join(root, build.dockerfile)).toBe(
      path.join(dockerDir, "Dockerfile"),
    );
  });

  it.each(appServices)("%s is locked down", (_, service) => {
    expect(service.read_only).toBe(true);
    expect(service.tmpfs).toEqual(["/tmp:size=16m,mode=1777"]);
    expect(service.security_opt).toEqual(["no-new-privileges:true"]);
    expect(service.cap_drop).toEqual(["ALL"]);
  });

  it.each(appServices)(
    "%s adds SETUID and SETGID only to switch from root",
    (_, service) => {
      const switches =
        service.environment?.SECRET_ENTRYPOINT_USER !== undefined;
      const root = service.user === "0:0";
      expect(switches).toBe(root);
      expect(service.cap_add ?? []).toEqual(
        switches ? ["SETUID", "SETGID"] : [],
      );
    },
  );

  it.each(appServices)(
    "%s has valid settings and references",
    (name, service) => {
      const references = expectValidEnvironment(containerEnv(service), name);
      expect(references.length).toBeGreaterThan(2);
    },
  );

  it.each(appServices)(
    "%s gets the secrets its file references read",
    (_, service) => {
      const env = Object.values(containerEnv(service)).join("\n");
      for (const secret of service.secrets ?? []) {
        expect(env).toContain(`file:/run/secrets/${secret}`);
        expect(
          fs.existsSync(path.join(dockerDir, compose.secrets[secret]!.file)),
        ).toBe(true);
      }
    },
  );

  it("seeds the Vault keys the services read", () => {
    const seeded = compose.services["vault-seed"]!.command!.slice(4).map(
      (pair) => `vault:secret/app#${pair.split("=")[0]}`,
    );
    const read = appServices.flatMap(([, service]) =>
      Object.values(containerEnv(service)).filter((value) =>
        value.startsWith("vault:"),
      ),
    );
    for (const reference of read) {
      expect(seeded).toContain(reference.replace("?as=file", ""));
    }
  });
});

// ---- Kubernetes --------------------------------------------------------

interface Container {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  env?: Array<{ name: string; value: string }>;
  restartPolicy?: string;
  securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    capabilities?: { drop?: string[] };
  };
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean }>;
}

interface PodSpec {
  automountServiceAccountToken?: boolean;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  initContainers?: Container[];
  containers: Container[];
  volumes?: Array<{
    name: string;
    emptyDir?: { medium?: string };
    projected?: unknown;
  }>;
}

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
  spec?: { template: { spec: PodSpec } };
}

const models = {
  "v1/ServiceAccount": ServiceAccount,
  "apps/v1/Deployment": Deployment,
} as const;

const manifests = yamlFiles(kubernetesDir).map((file) => ({
  file: path.relative(root, file),
  objects: parseAll(file) as KubeObject[],
}));

const deployments = manifests.flatMap(({ file, objects }) =>
  objects
    .filter((object) => object.kind === "Deployment")
    .map((object) => ({ file, pod: object.spec!.template.spec })),
);

function containersOf(pod: PodSpec): Container[] {
  return [...(pod.initContainers ?? []), ...pod.containers];
}

function envOf(container: Container): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).map(({ name, value }) => [name, value]),
  );
}

/** The entrypoint's argv after the program name, as the image runs it. */
function entrypointArgs(container: Container): string[] {
  if (container.command) {
    expect(container.command).toEqual([installedAt]);
    return container.args ?? [];
  }
  return [...entrypointArgv.slice(1), ...(container.args ?? [])];
}

describe("examples/kubernetes", () => {
  it("has the four patterns", () => {
    expect(manifests.map(({ file }) => path.basename(file))).toEqual([
      "aws-irsa.yaml",
      "vault-exec.yaml",
      "vault-init-render.yaml",
      "vault-sidecar-refresh.yaml",
    ]);
  });

  it.each(manifests)(
    "$file validates against the Kubernetes schemas",
    ({ objects }) => {
      for (const object of objects) {
        const key =
          `${object.apiVersion}/${object.kind}` as keyof typeof models;
        expect(Object.keys(models)).toContain(key);
        expect(() => new models[key](object as never).validate()).not.toThrow();
      }
    },
  );

  it.each(deployments)(
    "$file runs as non-root, read-only, without capabilities",
    ({ pod }) => {
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: 10001,
      });
      for (const container of containersOf(pod)) {
        expect(container.securityContext, container.name).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        });
      }
    },
  );

  it.each(deployments)(
    "$file passes options and settings the entrypoint accepts",
    ({ file, pod }) => {
      for (const container of containersOf(pod)) {
        const env = envOf(container);
        const options = parseOptions(entrypointArgs(container), env);
        expect(options.command.length > 0 || options.render !== undefined).toBe(
          true,
        );
        expectValidEnvironment(env, `${file} ${container.name}`);
      }
    },
  );

  it.each(deployments.filter(({ pod }) => pod.initContainers))(
    "$file renders into a memory emptyDir that the application only reads",
    ({ pod }) => {
      const renderer = pod.initContainers![0]!;
      const options = parseOptions(entrypointArgs(renderer), envOf(renderer));
      const mount = renderer.volumeMounts!.find(
        (m) => m.mountPath === options.render,
      );
      const volume = pod.volumes!.find((v) => v.name === mount!.name);
      expect(volume!.emptyDir).toEqual({ medium: "Memory", sizeLimit: "1Mi" });

      const app = pod.containers[0]!;
      expect(app.volumeMounts).toContainEqual({ ...mount, readOnly: true });
      // The application holds no Vault setting or token.
      expect(
        Object.keys(envOf(app)).filter((name) => name.startsWith("VAULT_")),
      ).toEqual([]);
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(app.volumeMounts!.map((m) => m.name)).not.toContain("vault-token");
      expectAppReadsRendered(options, envOf(app));
    },
  );

  it("runs the sidecar as a native sidecar that refreshes", () => {
    const { pod } = deployments.find(({ file }) =>
      file.endsWith("sidecar-refresh.yaml"),
    )!;
    const sidecar = pod.initContainers![0]!;
    expect(sidecar.restartPolicy).toBe("Always");
    const options = parseOptions(entrypointArgs(sidecar), envOf(sidecar));
    expect(options.refreshMs).toBe(5 * 60_000);
    expect(options.renderMode).toBe(0o400);
  });

  it("logs in to Vault with the Kubernetes auth and a role", () => {
    const vaultContainers = deployments
      .flatMap(({ pod }) => containersOf(pod))
      .filter((container) => envOf(container).VAULT_ADDR);
    expect(vaultContainers.length).toBe(3);
    for (const container of vaultContainers) {
      expect(readSettings(envOf(container)).auth).toMatchObject({
        method: "kubernetes",
        role: "app",
      });
    }
  });

  it("gives the AWS example an IRSA service account", () => {
    const { objects } = manifests.find(({ file }) =>
      file.endsWith("aws-irsa.yaml"),
    )!;
    const account = objects.find((o) => o.kind === "ServiceAccount")!;
    expect(
      account.metadata.annotations?.["eks.amazonaws.com/role-arn"],
    ).toMatch(/^arn:aws:iam::\d{12}:role\/[\w+=,.@-]+$/);
    const deployment = objects.find((o) => o.kind === "Deployment")!;
    expect(deployment.spec!.template.spec).toMatchObject({
      serviceAccountName: account.metadata.name,
    });
  });
});

function expectAppReadsRendered(
  options: ReturnType<typeof parseOptions>,
  appEnv: Record<string, string>,
) {
  const dir = options.render!;
  if (options.renderFormat === "env") {
    expect(appEnv.SECRET_ENTRYPOINT_ENV_FROM).toBe(
      path.posix.join(dir, renderFileNames.env),
    );
    return;
  }
  const files = Object.entries(appEnv).filter(([name]) =>
    name.endsWith("_FILE"),
  );
  expect(files.length).toBeGreaterThan(0);
  for (const [name, file] of files) {
    expect(file).toBe(path.posix.join(dir, name.slice(0, -"_FILE".length)));
  }
}
