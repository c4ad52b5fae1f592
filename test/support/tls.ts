/**
 * Certificates for the TLS tests, made with the openssl command line in a
 * temporary folder: a CA, a server certificate for 127.0.0.1 and localhost,
 * a client certificate signed by the same CA, and a second CA that signed
 * nothing the server shows (the "wrong CA"). `useTlsVaults` sets them up
 * with two fake Vaults for a describe block.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

import { afterAll, beforeAll } from "vitest";

import type { FakeVault, FakeVaultOptions } from "../servers/vault.ts";

/** Paths of the PEM files, and the folder that holds them. */
export interface TestPki {
  dir: string;
  caCert: string;
  caKey: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  otherCaCert: string;
  /** A folder with only the CA certificate, for VAULT_CAPATH. */
  caDir: string;
}

/** Creates the files; remove `dir` when done. */
export function createPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "vault-pki-"));
  const file = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) =>
    execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });

  makeCa(openssl, "ca", "secret-entrypoint test CA");
  makeCa(openssl, "other-ca", "an unrelated CA");
  fs.writeFileSync(
    file("server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  fs.writeFileSync(file("client.ext"), "extendedKeyUsage=clientAuth\n");
  makeLeaf(openssl, "server", "127.0.0.1");
  makeLeaf(openssl, "client", "secret-entrypoint");

  const caDir = file("cas");
  fs.mkdirSync(caDir);
  fs.copyFileSync(file("ca.pem"), path.join(caDir, "ca.pem"));
  return {
    dir,
    caCert: file("ca.pem"),
    caKey: file("ca.key"),
    serverCert: file("server.pem"),
    serverKey: file("server.key"),
    clientCert: file("client.pem"),
    clientKey: file("client.key"),
    otherCaCert: file("other-ca.pem"),
    caDir,
  };
}

type OpenSsl = (...args: string[]) => Buffer;

function makeCa(openssl: OpenSsl, name: string, subject: string): void {
  // prettier-ignore
  openssl(
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
    "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`,
    "-days", "2", "-subj", `/CN=${subject}`,
  );
}

// Signed by "ca", with the extensions of NAME.ext.
function makeLeaf(openssl: OpenSsl, name: string, commonName: string): void {
  // prettier-ignore
  openssl(
    "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
    "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${commonName}`,
  );
  // prettier-ignore
  openssl(
    "x509", "-req", "-in", `${name}.csr`, "-CA", "ca.pem", "-CAkey", "ca.key",
    "-CAcreateserial", "-out", `${name}.pem`, "-days", "2",
    "-extfile", `${name}.ext`,
  );
}

/** The PKI and the two TLS fakes of a `describe("TLS")` block. */
export interface TlsVaults {
  pki: TestPki;
  /** Serves TLS with the server certificate, signed by `pki.caCert`. */
  secure: FakeVault;
  /** The same, and requires a client certificate signed by the same CA. */
  mutual: FakeVault;
}

/**
 * Registers `beforeAll` and `afterAll` in the calling describe block: they
 * create the PKI and start `secure` and `mutual` with `start`, which fills a
 * fake with the test file's data, then close them and remove the files. The
 * fields are set once `beforeAll` has run: read them inside tests.
 */
export function useTlsVaults(
  start: (options: FakeVaultOptions) => Promise<FakeVault>,
): TlsVaults {
  const vaults = {} as TlsVaults;
  beforeAll(async () => {
    const pki = createPki();
    const cert = fs.readFileSync(pki.serverCert);
    const key = fs.readFileSync(pki.serverKey);
    const ca = fs.readFileSync(pki.caCert);
    vaults.pki = pki;
    vaults.secure = await start({ tls: { cert, key } });
    vaults.mutual = await start({
      tls: { cert, key, ca, requireClientCert: true },
    });
  });

  afterAll(async () => {
    await vaults.secure?.close();
    await vaults.mutual?.close();
    if (vaults.pki !== undefined) {
      fs.rmSync(vaults.pki.dir, { recursive: true, force: true });
    }
  });
  return vaults;
}
