/**
 * The TLS files the Vault CLI's variables name, read once before the first
 * request so that a missing or unreadable file is a configuration error
 * (exit 78) that names the variable, not a failed handshake.
 */
import fs from "node:fs/promises";
import path from "node:path";

import { EntrypointError, ExitCode } from "../../src/errors.ts";
import type { TlsMaterial } from "./http.ts";
import type { TlsSettings } from "./settings.ts";

const certificateMark = "-----BEGIN CERTIFICATE-----";

/** Reads the CA bundle, CA folder and client certificate and key. */
export async function readTlsMaterial(tls: TlsSettings): Promise<TlsMaterial> {
  const ca = [
    ...(tls.caCert === undefined
      ? []
      : [await readPem(tls.caCert, "VAULT_CACERT")]),
    ...(tls.caPath === undefined ? [] : await readCaFolder(tls.caPath)),
  ];
  const material: TlsMaterial = ca.length === 0 ? {} : { ca };
  if (tls.clientCert === undefined || tls.clientKey === undefined) {
    return material;
  }
  return {
    ...material,
    cert: await readPem(tls.clientCert, "VAULT_CLIENT_CERT"),
    key: await readFile(tls.clientKey, "VAULT_CLIENT_KEY"),
  };
}

async function readPem(file: string, variable: string): Promise<Buffer> {
  const content = await readFile(file, variable);
  if (!content.includes(certificateMark)) {
    throw new EntrypointError(
      `${variable}=${file} holds no PEM certificate (${certificateMark})`,
      ExitCode.config,
    );
  }
  return content;
}

// VAULT_CAPATH is a folder of PEM files; like the Vault CLI, every file in it
// that holds a certificate counts, whatever its name.
async function readCaFolder(folder: string): Promise<Buffer[]> {
  let names: string[];
  try {
    names = (await fs.readdir(folder)).sort();
  } catch (error) {
    throw unreadable(folder, "VAULT_CAPATH", error);
  }
  const certificates: Buffer[] = [];
  for (const name of names) {
    const file = path.join(folder, name);
    const stat = await fs.stat(file).catch(() => undefined);
    if (stat?.isFile() !== true) continue;

    const content = await readFile(file, "VAULT_CAPATH");
    if (content.includes(certificateMark)) certificates.push(content);
  }
  if (certificates.length === 0) {
    throw new EntrypointError(
      `VAULT_CAPATH=${folder} holds no PEM certificate`,
      ExitCode.config,
    );
  }
  return certificates;
}

async function readFile(file: string, variable: string): Promise<Buffer> {
  try {
    return await fs.readFile(file);
  } catch (error) {
    throw unreadable(file, variable, error);
  }
}

function unreadable(file: string, variable: string, error: unknown) {
  const code = (error as NodeJS.ErrnoException).code ?? "read error";
  return new EntrypointError(
    `cannot read ${variable}=${file}: ${code}`,
    ExitCode.config,
  );
}
