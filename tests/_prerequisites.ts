// What `deno task test` needs besides Deno: the Debian packages whose programs the tests drive. Run before the
// tests (deno.json's test task), it stops with one line naming the missing packages and the command that
// installs them, instead of a raw "Failed to spawn" halfway through. It only looks: it installs nothing.

/** One package the tests need, and how to tell it is installed. */
export interface Prerequisite {
  /** The Debian package that provides it. */
  package: string;
  /** A program looked up on PATH, or an absolute path that must exist (a Python module's `__init__.py`). */
  program: string;
  /** The tests that need it, for whoever reads this table. */
  neededBy: string;
}

/** Every package the tests drive, in the order `.ci/run` installs them (wrk is the benchmark's only). */
export const PREREQUISITES: readonly Prerequisite[] = [
  { package: "nginx", program: "nginx", neededBy: "tests/site/nginx_test.ts, tests/site/cluster_test.ts" },
  { package: "openssl", program: "openssl", neededBy: "the HTTPS tests' certificates" },
  { package: "chromium", program: "/usr/bin/chromium", neededBy: "tests/site/site_browser_test.ts" },
  { package: "python3", program: "python3", neededBy: "the shared HTTP corpus runner" },
  {
    package: "nodejs",
    program: "node",
    neededBy: "tests/engine/conformance_test.ts, tests/engine/keep_alive_test.ts",
  },
  {
    package: "python3-websockets",
    program: "/usr/lib/python3/dist-packages/websockets/__init__.py",
    neededBy: "tests/engine/websocket_clients_test.ts (Debian's /usr/bin/python3 runs it)",
  },
  {
    package: "curl",
    program: "curl",
    neededBy: "tests/engine/unix_socket_test.ts (a client over a Unix socket)",
  },
];

/** Debian installs each PostgreSQL major version's programs here: `/usr/lib/postgresql/15/bin/initdb`. */
const POSTGRES_LIB = "/usr/lib/postgresql";

/** The variable naming a PostgreSQL server for the tests (tests/fixtures/postgres.ts reads it too). */
const POSTGRES_URL_VAR = "PIER_TEST_POSTGRES_URL";

/**
 * The newest installed PostgreSQL's program folder, as Debian's `postgresql` package lays it out.
 *
 * @returns The folder holding `initdb`, `pg_ctl` and `psql`, or null when none is installed.
 *
 * @example
 * ```ts
 * import { postgresBinDir } from "./_prerequisites.ts";
 * console.log(postgresBinDir()); // "/usr/lib/postgresql/15/bin" or null
 * ```
 */
export function postgresBinDir(): string | null {
  let versions: string[];
  try {
    versions = [...Deno.readDirSync(POSTGRES_LIB)].map((entry) => entry.name).filter((name) =>
      /^\d+$/.test(name)
    );
  } catch {
    return null; // no /usr/lib/postgresql at all
  }
  for (const version of versions.sort((a, b) => Number(b) - Number(a))) {
    const bin = `${POSTGRES_LIB}/${version}/bin`;
    if (isExecutable(`${bin}/initdb`)) return bin;
  }
  return null;
}

function isExecutable(path: string): boolean {
  try {
    const info = Deno.statSync(path);
    return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** Whether `path` is a file (a Python module is imported, not run: it needs no execute bit). */
function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * Whether a program is on PATH, or, given as an absolute path, exists and is executable (or is a Python
 * module's file). Deno standing in does
 * not count: `deno run` puts a `node` that is Deno itself first on PATH, and the tests need the real one.
 */
function installed(program: string): boolean {
  if (program.startsWith("/") && program.endsWith(".py")) return isFile(program);
  const candidates = program.startsWith("/")
    ? [program]
    : (Deno.env.get("PATH") ?? "").split(":").filter((dir) => dir !== "").map((dir) => `${dir}/${program}`);
  const deno = Deno.realPathSync(Deno.execPath());
  return candidates.some((path) => isExecutable(path) && Deno.realPathSync(path) !== deno);
}

/**
 * The Debian packages the tests need that are not installed. PostgreSQL counts as present when its programs
 * are installed or when `PIER_TEST_POSTGRES_URL` names a server.
 *
 * @param isInstalled How a program is looked up. Default: PATH, or the absolute path.
 * @param hasPostgres Whether PostgreSQL is available. Default: the variable, or Debian's binaries.
 * @returns The missing packages' names, in install order; empty when all is there.
 *
 * @example
 * ```ts
 * import { missingPackages } from "./_prerequisites.ts";
 * console.log(missingPackages(() => false, () => true)); // ["nginx", "openssl", "chromium", "python3", "nodejs", "python3-websockets", "curl"]
 * ```
 */
export function missingPackages(
  isInstalled: (program: string) => boolean = installed,
  hasPostgres: () => boolean = () =>
    (Deno.env.get(POSTGRES_URL_VAR) ?? "") !== "" || postgresBinDir() !== null,
): string[] {
  const missing = PREREQUISITES.filter((p) => !isInstalled(p.program)).map((p) => p.package);
  if (!hasPostgres()) missing.push("postgresql");
  return missing;
}

/**
 * The one line that stops the test task: which packages are missing and how to install them.
 *
 * @param missing The missing packages (not empty).
 * @returns The line.
 *
 * @example
 * ```ts
 * import { missingLine } from "./_prerequisites.ts";
 * console.log(missingLine(["nginx", "chromium"]));
 * ```
 */
export function missingLine(missing: readonly string[]): string {
  return `deno task test needs Debian packages that are not installed: ${missing.join(", ")}. ` +
    `Install them with \`apt-get install ${missing.join(" ")}\` (as root), or run \`bash .ci/run\`, ` +
    `which installs everything the tests need and runs them.`;
}

if (import.meta.main) {
  const missing = missingPackages();
  if (missing.length > 0) {
    console.error(missingLine(missing));
    Deno.exit(1);
  }
}
