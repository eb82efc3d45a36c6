/**
 * Reports of conformance runs: the summary table (section × verdict), the cases that are not
 * plainly OK with what was observed, section 9's times, and RESULTS.md.
 */
import { CASES, SECTIONS, TIMED_GROUPS } from "./cases.ts";
import { type CaseResult, type Verdict, VERDICTS } from "./session.ts";

/** One run: one implementation in one role on one runtime. */
export interface RunReport {
  /** The runtime and its version, e.g. "node 20.20.2". */
  runtime: string;
  /** What is under test: "server" (run by the fuzzing client) or "client" (by the fuzzing server). */
  role: "server" | "client";
  /** The implementation under test. */
  peer: string;
  /** Is it ours (anyws) or a reference. */
  ours: boolean;
  seed: number;
  maxMessageSize: number;
  seconds: number;
  results: CaseResult[];
}

const SHORT: Record<Verdict, string> = {
  OK: "OK",
  "NON-STRICT": "NON-STRICT",
  INFORMATIONAL: "INFO",
  FAILED: "FAILED",
  PENDING: "PENDING",
  SKIPPED: "SKIPPED",
};

export function countBySection(results: readonly CaseResult[]): Map<number, Record<Verdict, number>> {
  const counts = new Map<number, Record<Verdict, number>>();
  for (const section of Object.keys(SECTIONS).map(Number)) {
    counts.set(section, Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>);
  }
  for (const r of results) counts.get(r.section)![r.verdict]++;
  for (const [section, c] of counts) if (VERDICTS.every((v) => c[v] === 0)) counts.delete(section);
  return counts;
}

export function totals(results: readonly CaseResult[]): Record<Verdict, number> {
  const t = Object.fromEntries(VERDICTS.map((v) => [v, 0])) as Record<Verdict, number>;
  for (const r of results) t[r.verdict]++;
  return t;
}

/** A short name of the implementation, for table headers. */
function shortPeer(r: Pick<RunReport, "peer" | "ours">): string {
  if (r.ours) return "anyws";
  if (r.peer.startsWith("Bun's")) return "Bun ws";
  return r.peer.split(" ")[0];
}

function columnTitle(r: RunReport): string {
  return `${r.runtime.split(" ")[0]} ${r.role}: ${shortPeer(r)}`;
}

export function roleTitle(report: Pick<RunReport, "role" | "peer">): string {
  return report.role === "server" ? `fuzzing client → ${report.peer}` : `${report.peer} → fuzzing server`;
}

/** The one summary table of a run, as text. */
export function formatSummary(report: RunReport): string {
  const counts = countBySection(report.results);
  const t = totals(report.results);
  const cols = VERDICTS.map((v) => SHORT[v]);
  const nameWidth = 30;
  const line = (name: string, values: (string | number)[]) =>
    name.padEnd(nameWidth) + values.map((v, i) => String(v).padStart(Math.max(cols[i]?.length ?? 5, 5) + 2)).join("");
  const out = [
    `anyws conformance · ${report.runtime} · ${roleTitle(report)}`,
    line("section", [...cols, "total"]),
  ];
  for (const [section, c] of counts) {
    out.push(line(`${String(section).padStart(2)} ${SECTIONS[section]}`, [...VERDICTS.map((v) => c[v]), VERDICTS.reduce((n, v) => n + c[v], 0)]));
  }
  out.push(line("   total", [...VERDICTS.map((v) => t[v]), report.results.length]));
  const skipped = t.SKIPPED ? ` · SKIPPED: messages above ${sizeText(report.maxMessageSize)} (run with ANYWS_CONFORMANCE_BIG=1 for all)` : "";
  out.push(`${report.results.length} cases in ${report.seconds.toFixed(1)} s · seed ${report.seed}${skipped}`);
  return out.join("\n");
}

/** Every case that is not plainly OK (PENDING aside), with what was observed. */
export function formatNotOk(report: RunReport, verdicts: readonly Verdict[] = ["FAILED", "NON-STRICT", "INFORMATIONAL"]): string {
  const lines: string[] = [];
  for (const v of verdicts) {
    for (const r of report.results.filter((x) => x.verdict === v)) {
      lines.push(`${v.padEnd(13)} ${r.id.padEnd(12)} ${r.description}\n${" ".repeat(27)}${r.observed}${r.notes.length ? ` [${r.notes.join("; ")}]` : ""}`);
    }
  }
  return lines.join("\n");
}

/** Section 9's times, one line per sub-section. */
export function formatTimings(report: RunReport): string {
  const groups = timingGroups(report.results);
  return groups.map((g) => `${g.group.padEnd(4)} ${g.title.padEnd(40)} ${g.cells.map((c) => `${c.label}: ${c.value}`).join(" · ")}`).join("\n");
}

function timingGroups(results: readonly CaseResult[]) {
  const labels = new Map(CASES.map((c) => [c.id, c.label ?? c.id]));
  const groups: { group: string; title: string; cells: { label: string; value: string }[] }[] = [];
  for (const r of results) {
    if (!r.timed && r.section !== 9) continue;
    const group = r.id.split(".").slice(0, 2).join(".");
    let g = groups.find((x) => x.group === group);
    if (!g) groups.push((g = { group, title: TIMED_GROUPS[group] ?? group, cells: [] }));
    const value = r.verdict === "SKIPPED" ? "skipped" : r.verdict === "FAILED" ? `FAILED (${r.durationMs} ms)` : `${r.durationMs} ms`;
    g.cells.push({ label: labels.get(r.id)!, value });
  }
  return groups;
}

function sizeText(n: number): string {
  return n >= 1024 * 1024 ? `${n / (1024 * 1024)} MiB` : `${n} B`;
}

// ---- RESULTS.md ----------------------------------------------------------------------------

const cell = (s: string) => s.replace(/\|/g, "\\|").replace(/\n/g, " ");

/** RESULTS.md from the reports of every runtime and role. */
export function resultsMarkdown(reports: readonly RunReport[], meta: { date: string; command: string; notes?: string[] }): string {
  const out: string[] = [];
  out.push("# Conformance results");
  out.push("");
  out.push(`Generated by \`${meta.command}\` on ${meta.date}; do not edit by hand. The suite, its cases and how to run it: [README.md](README.md).`);
  out.push("");
  out.push("Verdicts, as the Autobahn|Testsuite gives them: **OK**; **NON-STRICT**, acceptable but not the best behaviour (failing later than possible, a close code other than the expected one); **INFO**, behaviour the RFC leaves open (reported, not judged); **FAILED**; **PENDING**, cases of a feature still being built (none at present); **SKIPPED**, messages above the run's size limit.");
  out.push("");
  for (const n of meta.notes ?? []) out.push(`${n}\n`);
  out.push("## Summary");
  out.push("");
  out.push(`| runtime | under test | ${VERDICTS.map((v) => SHORT[v]).join(" | ")} | total | time |`);
  out.push(`|---|---|${VERDICTS.map(() => "--:").join("|")}|--:|--:|`);
  for (const r of reports) {
    const t = totals(r.results);
    out.push(`| ${r.runtime} | ${cell(r.role === "server" ? `${r.peer} (server)` : `${r.peer} (client)`)} | ${VERDICTS.map((v) => (v === "FAILED" && t[v] ? `**${t[v]}**` : t[v])).join(" | ")} | ${r.results.length} | ${r.seconds.toFixed(1)} s |`);
  }
  out.push("");
  for (const ours of [true, false]) {
    const group = reports.filter((r) => r.ours === ours);
    if (group.length === 0) continue;
    out.push(ours ? "## anyws, by section" : "## Reference peers, by section");
    out.push("");
    for (const r of group) {
      out.push(`### ${r.runtime} · ${cell(roleTitle(r))}`);
      out.push("");
      out.push(`| section | ${VERDICTS.map((v) => SHORT[v]).join(" | ")} | total |`);
      out.push(`|---|${VERDICTS.map(() => "--:").join("|")}|--:|`);
      for (const [section, c] of countBySection(r.results)) {
        const total = VERDICTS.reduce((n, v) => n + c[v], 0);
        out.push(`| ${section} ${SECTIONS[section]} | ${VERDICTS.map((v) => (v === "FAILED" && c[v] ? `**${c[v]}**` : c[v])).join(" | ")} | ${total} |`);
      }
      out.push("");
      const notOk = r.results.filter((x) => x.verdict === "FAILED" || x.verdict === "NON-STRICT" || x.verdict === "INFORMATIONAL");
      if (notOk.length) {
        out.push("<details><summary>Cases not OK, with what was observed</summary>");
        out.push("");
        out.push("| case | verdict | description | observed |");
        out.push("|---|---|---|---|");
        for (const x of notOk) out.push(`| ${x.id} | ${x.verdict === "FAILED" ? "**FAILED**" : x.verdict} | ${cell(x.description)} | ${cell(x.observed)} |`);
        out.push("");
        out.push("</details>");
        out.push("");
      }
    }
  }
  out.push("## Section 9: time taken (ms, connection open to closed)");
  out.push("");
  out.push("Reported, not judged: loopback, one process, two cores shared with the fuzzer, whose own work is included (masking; in 9.5 and 9.6 one loopback round trip between chops, so that each reaches the peer on its own).");
  out.push("");
  const timed = reports.map((r) => ({ r, groups: timingGroups(r.results) }));
  const first = timed[0]?.groups ?? [];
  out.push(`| case | ${timed.map(({ r }) => cell(columnTitle(r))).join(" | ")} |`);
  out.push(`|---|${timed.map(() => "--:").join("|")}|`);
  for (const g of first) {
    g.cells.forEach((c, i) => {
      const id = `${g.group}.${i + 1}`;
      out.push(`| ${id} ${cell(g.title)}, ${cell(c.label)} | ${timed.map(({ groups }) => groups.find((x) => x.group === g.group)?.cells[i]?.value ?? "").join(" | ")} |`);
    });
  }
  out.push("");
  out.push("## Every case");
  out.push("");
  out.push("<details><summary>Verdict of every case in every run (PENDING cases listed once, at the end)</summary>");
  out.push("");
  out.push(`| case | ${reports.map((r) => cell(columnTitle(r))).join(" | ")} |`);
  out.push(`|---|${reports.map(() => ":-:").join("|")}|`);
  const pending: string[] = [];
  for (const c of CASES) {
    const row = reports.map((r) => r.results.find((x) => x.id === c.id));
    if (row.every((x) => x === undefined)) continue;
    if (row.every((x) => x?.verdict === "PENDING")) {
      pending.push(c.id);
      continue;
    }
    const codes = row.map((x) => (x ? `${x.verdict === "FAILED" ? "**FAILED**" : SHORT[x.verdict]}${x.remoteCloseCode !== null && x.verdict !== "SKIPPED" ? ` ${x.remoteCloseCode}` : ""}` : ""));
    out.push(`| ${c.id} | ${codes.join(" | ")} |`);
  }
  out.push("");
  if (pending.length) out.push(`PENDING (${pending.length}): ${pending.join(", ")}.`);
  out.push("");
  out.push("</details>");
  out.push("");
  return out.join("\n");
}
