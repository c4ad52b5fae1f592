import { describe, expect, test } from "vitest";

import {
  parseReference,
  parseValue,
  secretIdentity,
  mockKey,
} from "../src/references.ts";

const context = { fileRoots: ["/run/secrets", "/etc/app-secrets"] };
const defaults = { optional: false, as: "env", encoding: "none" };

describe("parseReference accepts", () => {
  test.each([
    [
      "vault:secret/app#password",
      {
        scheme: "vault",
        path: "secret/app",
        selector: { kind: "key", key: "password" },
      },
    ],
    ["vault:secret/app", { scheme: "vault", path: "secret/app" }],
    [
      "vault:secret/data/app?version=3#password",
      {
        scheme: "vault",
        path: "secret/data/app",
        version: 3,
        selector: { kind: "key", key: "password" },
      },
    ],
    [
      "vault:secret/app#password#7",
      {
        scheme: "vault",
        path: "secret/app",
        version: 7,
        selector: { kind: "key", key: "password" },
      },
    ],
    [
      "vault:database/creds/ro#username",
      {
        scheme: "vault",
        path: "database/creds/ro",
        selector: { kind: "key", key: "username" },
      },
    ],
    [
      "vault:pki/certs#tls.crt",
      {
        scheme: "vault",
        path: "pki/certs",
        selector: { kind: "key", key: "tls.crt" },
      },
    ],
    [
      "vault:secret/app#/db/hosts/0",
      {
        scheme: "vault",
        path: "secret/app",
        selector: {
          kind: "pointer",
          pointer: "/db/hosts/0",
          tokens: ["db", "hosts", "0"],
        },
      },
    ],
    [
      "vault:secret/app#/a~1b/c~0d",
      {
        scheme: "vault",
        path: "secret/app",
        selector: {
          kind: "pointer",
          pointer: "/a~1b/c~0d",
          tokens: ["a/b", "c~d"],
        },
      },
    ],
    ["awssm:prod/db", { scheme: "awssm", secretId: "prod/db" }],
    [
      "awssm:prod/db?version-stage=AWSPREVIOUS#password",
      {
        scheme: "awssm",
        secretId: "prod/db",
        versionStage: "AWSPREVIOUS",
        selector: { kind: "key", key: "password" },
      },
    ],
    [
      "awssm:prod/db?version-id=0a1b-2c",
      { scheme: "awssm", secretId: "prod/db", versionId: "0a1b-2c" },
    ],
    [
      "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
      {
        scheme: "awssm",
        secretId:
          "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        region: "eu-west-1",
      },
    ],
    [
      "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf:password::",
      {
        scheme: "awssm",
        secretId:
          "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
        region: "eu-west-1",
        selector: { kind: "key", key: "password" },
      },
    ],
    [
      "awssm:arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-AbCdEf::AWSPREVIOUS:",
      {
        scheme: "awssm",
        secretId:
          "arn:aws-cn:secretsmanager:cn-north-1:123456789012:secret:db-AbCdEf",
        region: "cn-north-1",
        versionStage: "AWSPREVIOUS",
      },
    ],
    [
      "awssm:arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf:user:AWSCURRENT:v-1",
      {
        scheme: "awssm",
        secretId:
          "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf",
        region: "us-east-1",
        selector: { kind: "key", key: "user" },
        versionStage: "AWSCURRENT",
        versionId: "v-1",
      },
    ],
    [
      "file:/run/secrets/db_password",
      { scheme: "file", path: "/run/secrets/db_password" },
    ],
    [
      "file:/etc/app-secrets/app.json#/db/password",
      {
        scheme: "file",
        path: "/etc/app-secrets/app.json",
        selector: {
          kind: "pointer",
          pointer: "/db/password",
          tokens: ["db", "password"],
        },
      },
    ],
  ])("%s", (raw, expected) => {
    expect(parseReference(raw, context)).toEqual({
      text: raw,
      options: defaults,
      ...expected,
    });
  });

  test("every common option", () => {
    expect(
      parseReference(
        "file:/run/secrets/key?optional=true&as=file&encoding=base64",
        context,
      )?.options,
    ).toEqual({ optional: true, as: "file", encoding: "base64" });
  });
});

describe("parseReference passes on what is not a reference", () => {
  test.each([
    ["plain text", "hello"],
    ["an empty value", ""],
    ["an unknown scheme", "postgres://db:5432/app"],
    [
      "a bare ARN",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-AbCdEf",
    ],
    [
      "vault transit ciphertext",
      "vault:v1:8SDd3WHDOjf7mq69CyCqYjBXAiQQAVZRkFM13ok481zoCmHnSeDX9vyf7w==",
    ],
    ["a relative SQLite URL", "file:./dev.db"],
    ["a Prisma URL", "file:dev.db?connection_limit=1"],
    ["a path outside the roots", "file:/data/app.db?mode=ro"],
    ["a scheme without colon", "vault"],
    ["a scheme in upper case", "VAULT:secret/app"],
  ])("%s", (_name, raw) => {
    expect(parseReference(raw, context)).toBeUndefined();
  });
});

describe("parseReference rejects", () => {
  test.each([
    ["vault:", "malformed reference vault:: the vault locator is empty"],
    [
      "vault:#key",
      "malformed reference vault:#key: the vault locator is empty",
    ],
    [
      "awssm:?version-stage=X",
      "malformed reference awssm:?version-stage=X: the awssm locator is empty",
    ],
    [
      "vault:secret/app#",
      "malformed reference vault:secret/app#: the selector after # is empty",
    ],
    [
      "vault: secret/app",
      "malformed reference vault: secret/app: it contains whitespace or a control character",
    ],
    [
      "vault:secret/app#password ",
      "malformed reference vault:secret/app#password : it contains whitespace or a control character",
    ],
    [
      "vault:secret/app\n",
      "malformed reference vault:secret/app\n: it contains whitespace or a control character",
    ],
    [
      "vault:/secret/app",
      "malformed reference vault:/secret/app: a vault path has no leading or trailing slash (vault:secret/app)",
    ],
    [
      "vault:secret//app",
      "malformed reference vault:secret//app: the vault path has an empty or '..' segment",
    ],
    [
      "vault:secret/../sys",
      "malformed reference vault:secret/../sys: the vault path has an empty or '..' segment",
    ],
    [
      "vault:secret/app?versoin=2",
      'malformed reference vault:secret/app?versoin=2: unknown option "versoin"; vault references take optional, as, encoding, version',
    ],
    [
      "vault:secret/app?version=0",
      'malformed reference vault:secret/app?version=0: version "0" is not a positive whole number',
    ],
    [
      "vault:secret/app?version=two",
      'malformed reference vault:secret/app?version=two: version "two" is not a positive whole number',
    ],
    [
      "vault:secret/app?version=2#k#3",
      "malformed reference vault:secret/app?version=2#k#3: the version is given both as ?version= and as #KEY#VERSION",
    ],
    [
      "vault:secret/app#k#latest",
      'malformed reference vault:secret/app#k#latest: version "latest" is not a positive whole number',
    ],
    [
      "vault:secret/app?optional",
      "malformed reference vault:secret/app?optional: option optional needs a value (optional=...)",
    ],
    [
      "vault:secret/app?optional=yes",
      "malformed reference vault:secret/app?optional=yes: option optional=yes is not one of false, true",
    ],
    [
      "vault:secret/app?as=stdin",
      "malformed reference vault:secret/app?as=stdin: option as=stdin is not one of env, file",
    ],
    [
      "vault:secret/app?encoding=hex",
      "malformed reference vault:secret/app?encoding=hex: option encoding=hex is not one of none, base64",
    ],
    [
      "vault:secret/app?as=file&as=env",
      "malformed reference vault:secret/app?as=file&as=env: option as is given twice",
    ],
    [
      "vault:secret/app#key?optional=true",
      "malformed reference vault:secret/app#key?optional=true: options go before the selector: scheme:locator?option=value#key",
    ],
    [
      "vault:secret/app#/a~2",
      'malformed reference vault:secret/app#/a~2: JSON pointer /a~2 has a "~" that is not ~0 or ~1',
    ],
    [
      "awssm:prod/db?version=3",
      'malformed reference awssm:prod/db?version=3: unknown option "version"; awssm references take optional, as, encoding, version-stage, version-id',
    ],
    [
      "awssm:prod db",
      "malformed reference awssm:prod db: it contains whitespace or a control character",
    ],
    [
      "awssm:prod|db",
      "malformed reference awssm:prod|db: a secret name may hold only letters, digits and the characters /_+=.@-",
    ],
    [
      "awssm:arn:aws:s3:::bucket",
      "malformed reference awssm:arn:aws:s3:::bucket: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally followed by :json-key:version-stage:version-id",
    ],
    [
      "awssm:arn:aws:secretsmanager::123456789012:secret:db",
      "malformed reference awssm:arn:aws:secretsmanager::123456789012:secret:db: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally followed by :json-key:version-stage:version-id",
    ],
    [
      "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k:s:i:extra",
      "malformed reference awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k:s:i:extra: expected arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME, optionally followed by :json-key:version-stage:version-id",
    ],
    [
      "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k::#k",
      "malformed reference awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db:k::#k: the JSON key is given both in the ARN and elsewhere in the reference",
    ],
    [
      "file:/run/secrets/../../etc/shadow",
      "malformed reference file:/run/secrets/../../etc/shadow: the path is not a plain absolute path inside the file roots (/run/secrets, /etc/app-secrets)",
    ],
    [
      "file:/run/secrets//db",
      "malformed reference file:/run/secrets//db: the path is not a plain absolute path inside the file roots (/run/secrets, /etc/app-secrets)",
    ],
    [
      "file:/run/secrets/db?version=1",
      'malformed reference file:/run/secrets/db?version=1: unknown option "version"; file references take optional, as, encoding',
    ],
  ])("%j", (raw, message) => {
    expect(() => parseReference(raw, context)).toThrow(message);
    try {
      parseReference(raw, context);
    } catch (error) {
      expect((error as { exitCode: number }).exitCode).toBe(65);
    }
  });
});

describe("parseValue", () => {
  const vaultPassword = parseReference("vault:secret/app#password", context);

  test.each([
    ["no reference", "postgres://db/app", undefined],
    ["a shell variable", "${HOME}/bin", undefined],
    ["an unknown scheme inline", "${env:HOME}", undefined],
    ["transit ciphertext inline", "x${vault:v1:abc}", undefined],
    ["a whole reference", "vault:secret/app#password", [vaultPassword]],
    [
      "an inline reference",
      "postgres://app:${vault:secret/app#password}@db:5432/app",
      ["postgres://app:", vaultPassword, "@db:5432/app"],
    ],
    [
      "an inline reference alone",
      "${vault:secret/app#password}",
      [vaultPassword],
    ],
    [
      "an escaped reference",
      "$${vault:secret/app#password}",
      ["${vault:secret/app#password}"],
    ],
    [
      "an escape beside a reference",
      "$${vault:x}=${vault:secret/app#password}",
      ["${vault:x}=", vaultPassword],
    ],
    [
      "a shell variable beside a reference",
      "${USER}:${vault:secret/app#password}",
      ["${USER}:", vaultPassword],
    ],
  ])("%s", (_name, raw, expected) => {
    expect(parseValue(raw, context)).toEqual(expected);
  });

  test.each([
    [
      "unterminated",
      "a${vault:secret/app#password",
      "malformed reference ${vault:secret/app#password: no closing }",
    ],
    [
      "nested",
      "${vault:secret/${vault:x}}",
      "malformed reference ${vault:secret/${vault:x}: references cannot be nested",
    ],
    [
      "a file outside the roots",
      "${file:/etc/shadow}",
      "malformed reference file:/etc/shadow: the path is outside the file roots (/run/secrets, /etc/app-secrets); add its folder to SECRET_ENTRYPOINT_FILE_ROOTS",
    ],
    [
      "malformed inside",
      "x=${vault:secret/app?bad=1}",
      'malformed reference vault:secret/app?bad=1: unknown option "bad"; vault references take optional, as, encoding, version',
    ],
  ])("rejects %s", (_name, raw, message) => {
    expect(() => parseValue(raw, context)).toThrow(message);
  });
});

describe("identities", () => {
  const identity = (raw: string) =>
    secretIdentity(parseReference(raw, context)!);

  test("keys and options of one secret share its identity", () => {
    expect(identity("vault:secret/app#a")).toBe(
      identity("vault:secret/app?optional=true#b"),
    );
    expect(identity("awssm:prod/db#a")).toBe(identity("awssm:prod/db"));
  });

  test("versions are distinct secrets", () => {
    expect(identity("vault:secret/app#a")).not.toBe(
      identity("vault:secret/app?version=2#a"),
    );
    expect(identity("awssm:prod/db")).not.toBe(
      identity("awssm:prod/db?version-stage=AWSPREVIOUS"),
    );
  });

  test("the mock key drops options and selector", () => {
    expect(
      mockKey(parseReference("vault:secret/app?version=2#a", context)!),
    ).toBe("vault:secret/app");
    expect(
      mockKey(
        parseReference(
          "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf:password::",
          context,
        )!,
      ),
    ).toBe(
      "awssm:arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
    );
  });
});
