// What machine a benchmark ran on, in the one line every benchmark prints (CPU model, cores, memory, Deno):
// the CPU named from /proc/cpuinfo and lscpu, with its family/model/stepping, since a VM's "model name" can
// be as vague as "AMD EPYC". Read through `cat` and `lscpu` (Deno asks for --allow-all to read /proc).

/** The machine, for the reports. */
export interface Machine {
  /** The CPU model, e.g. "AMD EPYC (family 25, model 1, stepping 1)". */
  cpu: string;
  cores: number;
  memGiB: number;
  /** The load average over 1, 5 and 15 minutes, as /proc/loadavg gives it. */
  load: string;
}

/** A program's standard output, or "" when it is missing or fails. */
async function output(cmd: string, args: string[]): Promise<string> {
  try {
    // LC_ALL=C: lscpu translates its field names.
    const out = await new Deno.Command(cmd, { args, env: { LC_ALL: "C" }, stdout: "piped", stderr: "null" })
      .output();
    return out.success ? new TextDecoder().decode(out.stdout) : "";
  } catch {
    return "";
  }
}

/** The value of the first `name : value` line (as /proc/cpuinfo and lscpu print them), or "". */
function field(text: string, name: string): string {
  const line = text.split("\n").find((l) => l.slice(0, l.indexOf(":")).trim().toLowerCase() === name);
  return line?.slice(line.indexOf(":") + 1).trim() ?? "";
}

/**
 * The CPU model: the longer of /proc/cpuinfo's and lscpu's model names (lscpu names CPUs /proc leaves
 * unnamed, as on ARM), then the family, model and stepping numbers, which tell apart CPUs sold under one
 * name (family 25, model 1 is Zen 3's Milan, family 25, model 17 Zen 4's Genoa).
 *
 * @param cpuinfo The text of /proc/cpuinfo.
 * @param lscpu The output of `lscpu`, or "".
 * @returns E.g. "AMD EPYC (family 25, model 1, stepping 1)".
 */
export function cpuModel(cpuinfo: string, lscpu = ""): string {
  const proc = field(cpuinfo, "model name");
  const listed = field(lscpu, "model name");
  const name = (listed.length > proc.length ? listed : proc) || "unknown CPU";
  const numbers = [
    ["family", field(cpuinfo, "cpu family") || field(lscpu, "cpu family")],
    ["model", field(cpuinfo, "model") || field(lscpu, "model")],
    ["stepping", field(cpuinfo, "stepping") || field(lscpu, "stepping")],
  ].filter(([, value]) => value !== "");
  return numbers.length ? `${name} (${numbers.map(([k, v]) => `${k} ${v}`).join(", ")})` : name;
}

/** The machine as /proc and lscpu describe it now. */
export async function machineInfo(): Promise<Machine> {
  const [cpuinfo, lscpu, meminfo, load] = await Promise.all([
    output("cat", ["/proc/cpuinfo"]),
    output("lscpu", []),
    output("cat", ["/proc/meminfo"]),
    output("cat", ["/proc/loadavg"]),
  ]);
  return {
    cpu: cpuModel(cpuinfo, lscpu),
    cores: navigator.hardwareConcurrency,
    memGiB: Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024,
    load: load.split(" ").slice(0, 3).join(" "),
  };
}

/** The line every benchmark prints first: "Deno 2.9.6, AMD EPYC (family 25, ...), 2 cores, 3.8 GiB". */
export function machineLine(m: Machine): string {
  return `Deno ${Deno.version.deno}, ${m.cpu}, ${m.cores} cores, ${m.memGiB.toFixed(1)} GiB`;
}
