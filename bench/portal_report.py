"""The portal benchmark's report (bench/portal_load.py measures): the target line, the
tables, and what limits the portal, in words from the figures."""

from __future__ import annotations

from typing import Any

from bench.report import verdict

TARGET_PAGES, TARGET_P99_MS, TARGET_APPROVERS = 150, 150, 10
LOST = "Query not found when attempting to respond to it"
"""What the worker logs for a status query it answered too late: one the server sent it
again once the sticky-queue timeout had passed, and which the CLI and the portal asked
again after 2 s (``QUERY_PATIENCE``). Counted in its log: by latency alone such a view
cannot be told from queueing at 50 approvers."""


def _target(result: dict[str, Any]) -> dict[str, Any] | None:
    """The run the target is about: make run's portal (one process), 10 approvers."""
    return next((r for r in result["pages"]
                 if r["workers"] == 1 and r["approvers"] == TARGET_APPROVERS), None)


def report_lines(result: dict[str, Any]) -> list[str]:
    """Markdown: the target line, the tables, and what limits the portal."""
    out = []
    target = _target(result)
    if target is not None:
        errors = f", {target['errors']} errors" if target["errors"] else ""
        ok = (target["per_s"] >= TARGET_PAGES and target["p99_ms"] <= TARGET_P99_MS
              and target["errors"] == 0)
        out.append(f"- portal: >= {TARGET_PAGES} page views/s with p99 <= {TARGET_P99_MS} ms "
                   f"at {TARGET_APPROVERS} concurrent approvers: {target['per_s']:.0f} "
                   f"pages/s, p99 {target['p99_ms']:.0f} ms{errors}, {verdict(ok)}")
        best = max((r for r in result["pages"] if r["approvers"] == TARGET_APPROVERS),
                   key=lambda r: r["per_s"])
        if best is not target:
            out.append(f"  - with {best['workers']} portal processes: {best['per_s']:.0f} "
                       f"pages/s, p99 {best['p99_ms']:.0f} ms")
    connection = ("one connection kept by each approver" if result["keepalive"] else
                  "a new connection for each view")
    out += ["", f"Page views ({result['links']} links: finance's and the data steward's of "
            f"{result['offboardings']} offboardings; {result['rounds']} rounds of "
            f"{result['seconds']:g} s for each row, its pages/s the rounds' together (each "
            f"round's in parentheses), its percentiles over all their views; {connection}; "
            f"lost: status queries the worker answered too late, asked again after 2 s; the "
            f"last column is the CPU the rest "
            f"of the machine used meanwhile, in cores: other sessions' work, the kernel's):",
            "",
            "| portal processes | approvers | pages/s (rounds) | p50 ms | p95 ms | p99 ms | "
            "max ms | lost | errors | CPU ms per page: portal / worker / server / load "
            "generator | views per process % | rest of the machine |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["pages"]:
        cpu = r["cpu_ms"]
        rounds = ", ".join(f"{x:.0f}" for x in r["rounds_per_s"])
        out.append(f"| {r['workers']} | {r['approvers']} | {r['per_s']:.0f} ({rounds}) | "
                   f"{r['p50_ms']:.0f} | {r['p95_ms']:.0f} | {r['p99_ms']:.0f} | "
                   f"{r['max_ms']:,.0f} | {r['lost']} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} | {_shares(r)} | {max(0.0, r['others_cores']):.2f} |")
    failed = [f"{r['workers']} process(es), {r['approvers']} approvers: "
              + ", ".join(f"{n} {kind}" for kind, n in r["error_kinds"].items())
              + "".join(f" (the portal logged `{line[:300]}`)"
                        for line in r.get("portal_errors", []))
              for r in result["pages"] if r["errors"]]
    if failed:
        out += ["", "Errors: " + "; ".join(failed) + "."]
    out += ["", "Decisions (the form's POST up to its 303, K offboardings' approvals at once, "
            "once a round):",
            "", "| portal processes | K | decisions/s | p50 ms | p99 ms | max ms | errors | "
            "CPU ms per decision: portal / worker / server |",
            "|---|---|---|---|---|---|---|---|"]
    for r in result["decisions"]:
        cpu = r["cpu_ms"]
        out.append(f"| {r['workers']} | {r['k']} | {r['per_s']:.1f} | {r['p50_ms']:.0f} | "
                   f"{r['p99_ms']:.0f} | {r['max_ms']:,.0f} | {r['errors']} | "
                   f"{cpu['portal']:.1f} / {cpu['worker']:.1f} / {cpu['server']:.1f} |")
    out += ["", "The status query alone (what each page asks Temporal), from the benchmark's "
            "process: once a round, and at the end once the server had cleared every "
            "viewed offboarding's sticky queue (so that each query carries the whole "
            "history):", "",
            "| sticky queue | at a time | queries/s | p50 ms | p95 ms | p99 ms | max ms | "
            "lost | CPU ms per query: worker / server / this process |",
            "|---|---|---|---|---|---|---|---|---|"]
    for r in result["query"]:
        cpu = r["cpu_ms"]
        out.append(f"| {'cleared' if r.get('cleared') else 'kept'} | "
                   f"{r['concurrency']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
                   f"{r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:,.0f} | "
                   f"{r['lost']} | {cpu['worker']:.1f} / {cpu['server']:.1f} / "
                   f"{cpu['bench']:.1f} |")
    return [*out, "", *limits(result)]


def _shares(r: dict[str, Any]) -> str:
    return " / ".join(f"{100 * x:.0f}" for x in r["shares"]) or "-"


def _processes(result: dict[str, Any]) -> list[str]:
    """Several portal processes against one, in words."""
    runs = {(r["workers"], r["approvers"]): r for r in result["pages"]}
    counts = sorted({w for w, _ in runs})
    if len(counts) < 2 or counts[0] != 1:
        return []
    more = counts[1:]
    said = []
    helped = []
    for c in sorted({c for _, c in runs}):
        if c == 1 or (1, c) not in runs:
            continue
        helped += [w for w in more if (w, c) in runs
                   and runs[w, c]["per_s"] > 1.1 * runs[1, c]["per_s"]]
        them = [runs[w, c] for w in more if (w, c) in runs]
        counts_ = " and ".join(str(r["workers"]) for r in them)
        rates = " and ".join(f"{r['per_s']:.0f}" for r in them)
        p95s = " and ".join(f"{r['p95_ms']:,.0f}" for r in them)
        said.append(f"at {c} approvers {counts_} processes served {rates} pages/s (p95 "
                    f"{p95s} ms) against {runs[1, c]['per_s']:.0f} (p95 "
                    f"{runs[1, c]['p95_ms']:,.0f} ms) with one")
    top = max(c for _, c in runs)
    cost = [(w, sum(runs[w, top]["cpu_ms"][k] for k in ("portal", "worker", "server")))
            for w in counts if (w, top) in runs]
    more_cpu = cost[-1][1] > 1.1 * cost[0][1]
    spent = ", ".join(f"{c:.1f} ms with {w}" for w, c in cost)
    return [
        f"Several portal processes: {'; '.join(said)}. "
        + (f"A page cost more CPU the more processes there were (portal, worker and "
           f"server, at {top} approvers: {spent}): each process keeps its own connection "
           f"to Temporal, and all" if more_cpu else
           f"A page cost about the same CPU (portal, worker and server, at {top} "
           f"approvers: {spent}), and all")
        + f" of them share the {result['cores']} cores with the server and the worker. "
        + ("On this machine more processes bought more than a tenth more pages/s only "
           "in some settings (above); what they surely buy is a portal that survives one "
           "process's death." if helped else
           "On this machine more processes buy no throughput (none served a tenth more "
           "pages/s than one); what they buy is a portal that survives one process's "
           "death."),
    ]


def _query(result: dict[str, Any], *, cleared: bool) -> dict[str, Any] | None:
    """The status query timed alone, one at a time, with the sticky queue kept or not."""
    return next((r for r in result["query"]
                 if r["concurrency"] == 1 and r.get("cleared", False) == cleared), None)


def _unstuck(result: dict[str, Any]) -> list[str]:
    """What a lost query costs beyond its 2 s: the offboarding's sticky queue, in words."""
    kept, cleared = _query(result, cleared=False), _query(result, cleared=True)
    if kept is None or cleared is None:
        return []
    k, c = kept["cpu_ms"], cleared["cpu_ms"]
    return ["", (
        f"A lost query costs more than the approver's 2 s. When the sticky-queue timeout "
        f"passes, the server clears that offboarding's sticky queue, and until the "
        f"offboarding's next workflow task (for one waiting on an approver, maybe days) each "
        f"of its queries goes to the shared queue with the whole history: one at a time, "
        f"{c['server']:.1f} ms of the server's CPU and {c['worker']:.1f} of the worker's a "
        f"query against {k['server']:.1f} and {k['worker']:.1f}, {cleared['per_s']:.0f} "
        f"queries/s against {kept['per_s']:.0f} (the table's last rows). The server does "
        f"the same for every waiting offboarding the first time it is queried after the "
        f"worker that held it has gone (a restart, a deploy). Page views concentrated on few "
        f"offboardings made this benchmark's later rounds slower, one after another, when "
        f"it viewed 24: the lost queries cleared the sticky queue of more and more of them. "
        f"It views {result['offboardings']} now, as a month-end burst spreads its views.")]


def limits(result: dict[str, Any]) -> list[str]:
    """What limits the portal, in words, from the figures: where a page's CPU goes, how
    much of it is the status query, and the queries the worker lost."""
    target = _target(result)
    one = next((r for r in result["pages"] if r["workers"] == 1 and r["approvers"] == 1),
               None)
    query = _query(result, cleared=False)
    if target is None or one is None or query is None:
        return []
    cpu, rate, cores = target["cpu_ms"], target["per_s"], result["cores"]
    temporal = cpu["worker"] + cpu["server"]
    own = cpu["portal"] + cpu["worker"] + cpu["server"]
    pages = sum(r["ok"] for r in result["pages"])
    lost = sum(r["lost"] for r in result["pages"])
    longest = max(r["max_ms"] for r in result["pages"])
    query_lost = sum(r["lost"] for r in result["query"])
    busy = (own + cpu["bench"]) * rate / 1000
    others = target["others_cores"]
    if busy + others >= 0.75 * cores:
        verdict_cpu = ("the machine's CPU is what runs out, shared by the four, not one "
                       "process")
    else:
        verdict_cpu = ("no one process is saturated, and the machine had CPU to spare: "
                       "what was left is waiting in the query's path")
    decided = [r for r in result["decisions"] if r["workers"] == 1]
    processes = _processes(result)
    seen = (f"Lost queries: {lost} of {pages:,} page views (the longest took "
            f"{longest:,.0f} ms) and {query_lost} of the queries timed alone waited for "
            f"a status query the worker left unanswered until it was asked again.")
    return [
        f"What limits it. At {TARGET_APPROVERS} approvers and one portal process, a page "
        f"view cost {own:.1f} ms of CPU: {cpu['portal']:.1f} in the portal, "
        f"{cpu['worker']:.1f} in the worker (which answers the status query from its cache "
        f"of the workflow) and {cpu['server']:.1f} in the Temporal server (which routes "
        f"the query to the worker and back); the load generator, on the same cores, added "
        f"{cpu['bench']:.1f}: Temporal's side is {temporal / own:.0%} of a page's CPU. "
        f"At {rate:.0f} pages/s the portal's process used "
        f"{cpu['portal'] * rate / 1000:.0%} of a core and the four together {busy:.2f} of "
        f"the {cores} cores, the rest of the machine {others:.2f}: {verdict_cpu}. CPU "
        f"alone would allow about "
        f"{cores * 1000 / (own + cpu['bench']):.0f} pages/s on these cores with the "
        f"generator on them, {cores * 1000 / own:.0f} without it.",
        *(["", *processes] if processes else []),
        "",
        f"Each page asks Temporal one query. Timed alone, one at a time, the status query "
        f"took {query['p50_ms']:.1f} ms at p50 ({query['per_s']:.0f} queries/s) against "
        f"{one['p50_ms']:.1f} ms for a whole page at one approver: the query is about "
        f"{query['p50_ms'] / one['p50_ms']:.0%} of a page's time; the rest is the portal's "
        f"own (the link's signature, the status's decoding and model, the template, HTTP "
        f"on a new connection).",
        "",
        f"{seen} Now and then sdk-core answers a query that reached the worker's own "
        f"(sticky) queue only when the server sends it a second time (the worker then logs "
        f"\"{LOST}\" for the first), which the server does once the worker's "
        f"sticky-queue timeout (10 s) has passed; so the CLI and the portal ask again "
        f"after 2 s (`QUERY_PATIENCE`, offboarding/client.py), and the second is answered "
        f"at once. Before, such a view held its approver for 10 s.",
        *_unstuck(result),
        "",
        f"What a deployment should run for a month-end burst. 1,000 offboardings reaching "
        f"their approvers on one day bring 2,000 approvers (finance and the data steward); "
        f"if each opens the page three times (to read, to decide, the page after the "
        f"decision) and all of them within one hour, that is 6,000 page views and 2,000 "
        f"decisions: 1.7 pages/s and 0.6 decisions/s, against {rate:.0f} pages/s and "
        + (f"{decided[0]['per_s']:.0f} decisions/s " if decided else "")
        + f"from one portal process here. So: `OFFBOARDING_PORTAL_WORKERS=2` for "
        f"availability, not throughput (a process that dies is replaced while the other "
        f"serves); more processes only with more cores of their own (a process is one "
        f"event loop: at {cpu['portal']:.1f} ms of CPU a page, about "
        f"{1000 / cpu['portal']:.0f} pages/s with a core to itself), not on the cores the "
        f"Temporal server and the worker use, which spend {temporal / cpu['portal']:.1f}x "
        f"the portal's CPU per page. Each view is a query the worker holding that "
        f"offboarding answers, so a burst of views lands on the workers and the server as "
        f"much as on the portal: size them for the offboardings, and keep the portal's "
        f"processes few.",
    ]
