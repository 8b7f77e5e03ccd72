#!/usr/bin/env python3
"""dkim_exporter soak, run through bench/soak (which installs tools, generates the zones with
bench/gen.py and cleans up, the iptables rules included).

Two daemons, one at full detail and one at summary, each watching SOAK_DOMAINS domains (90 % from
its config, 10 % discovered from a loopback fake SES) x 3 SES records on 4 resolvers (Knot on
127.0.0.101-104, r4 a Knot of its own), with a directory of DMARC reports as a source, for
SOAK_MINUTES. `authoritative: false`: every domain here shares one zone and so its nameservers,
which the exporter asks at 50 queries a second each, so that a round of 30,000 records with
`authoritative: true` lasts 10 minutes whatever the interval.

  scrapes      GET /metrics of each daemon every second, as Prometheus sends it
  probes       /probe of one domain at 20 a second, on the full daemon
  status page  GET / of each daemon every 5 s
  reloads      every minute both configs swap between two domain lists 10 % apart, then SIGHUP
  reports      a new DMARC aggregate report file every 5 minutes
  faults       every 10 minutes: resolver r3 drops all traffic (iptables) in minutes 2-4, the
               nameserver r4 answers REFUSED in minute 5-6 (a Knot with no zones in its place),
               and the fake SES is down (connection refused) in minutes 6.5-9.5

Sampled every 10 s for each daemon: VmRSS, VmHWM, open descriptors, sockets, threads, CPU
seconds, rounds, the /metrics latency (p50, p99, max of the scrapes in the 10 s) and size.

Verdict, on what comes after the first SOAK_WARMUP_MINUTES: split into quarters, the median of
the last quarter is within 5 % of the second quarter's for RSS, and for descriptors, sockets and
threads within 5 % or 4 (small counts move by a socket in flight); every round on time (the
rounds completed at least the time elapsed over the interval, less one); nothing lost (at the
end every configured record and every SES identity's record has its series on /metrics, and no
removed domain has); every fault's condition seen (dkim_resolver_up 0 for r3 and r4,
dkim_ses_discovery_success 0) and cleared before the next fault of its kind.

Writes to SOAK_OUT: samples.csv, soak.png, soak.md (the table and the verdict) and events.log.
"""
import csv
import gzip
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import bench as b  # noqa: E402  (its helpers: processes, /proc figures, DNS and HTTP probes)

WORK = b.WORK
OUT = os.environ["SOAK_OUT"]
MINUTES = float(os.environ.get("SOAK_MINUTES", "60"))
WARMUP = float(os.environ.get("SOAK_WARMUP_MINUTES", "10"))
N = int(os.environ.get("SOAK_DOMAINS", "10000"))
INTERVAL = os.environ.get("SOAK_INTERVAL", "15s")
INTERVAL_S = float(INTERVAL.rstrip("s"))
EXE = os.environ.get("SOAK_EXPORTER", os.path.join(ROOT, "target/release/dkim_exporter"))
b.EXE = EXE  # the RSS watchdog watches this binary
RESOLVERS = ["127.0.0.%d" % (100 + k) for k in range(1, 5)]
DROPPED = "127.0.0.103"  # r3
REFUSING = "127.0.0.104"  # r4
ZONES = ["bench.", "dkim.amazonses.com."]
PORTS = {"full": 19171, "summary": 19172}
SES_PORT = 19173
SES_SOURCE = "soak"

t0 = time.time()
events = []
lock = threading.Lock()
stopping = threading.Event()
schedule_over = threading.Event()


def event(what):
    line = "%7.1f s  %s" % (time.time() - t0, what)
    with lock:
        events.append(line)
    b.log(what)


# --- domains, configs and the worlds they are checked in -------------------------------------

def tokens_by_domain():
    out = {}
    with open(os.path.join(WORK, "queries.txt")) as f:
        for line in f:
            name = line.split()[0]
            token, domain = name.split("._domainkey.")
            out.setdefault(domain, []).append(token)
    return out


TOKENS = tokens_by_domain()


def domain(i):
    return "d%05d.bench" % i


TENTH = N // 10
LISTS = {
    # 90 % of N from the config; a reload swaps a tenth of N for another tenth
    "a": [domain(i) for i in range(1, N - TENTH + 1)],
    "b": [domain(i) for i in range(TENTH + 1, N + 1)],
}
SES_DOMAINS = [domain(i) for i in range(N + 1, N + TENTH + 1)]


def write_config(path, detail, which):
    lines = ["interval: %s" % INTERVAL, "timeout: 2s", "authoritative: false",
             "metrics:", "  detail: %s" % detail, "resolvers:"]
    for k, a in enumerate(RESOLVERS, 1):
        lines += ["  - name: r%d" % k, "    address: %s:53" % a, "    max_queries_per_second: 0"]
    lines += ["ses:", "  - name: %s" % SES_SOURCE, "    region: us-east-1",
              "    endpoint: http://127.0.0.1:%d" % SES_PORT, "    refresh: 1m",
              "    max_requests_per_second: 100",
              "dmarc:", "  sources:", "    - name: files", "      refresh: 30s",
              "      directory: %s" % os.path.join(WORK, "dmarc"), "domains:"]
    body = "\n".join(lines) + "\n" + "".join(
        "  - domain: %s\n    provider: ses\n    selectors: [%s]\n" % (d, ", ".join(TOKENS[d])) for d in LISTS[which])
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(body)
    os.replace(tmp, path)


def knot_conf(name, listen, zones):
    d = os.path.join(WORK, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "knot.conf")
    with open(path, "w") as c:
        c.write("server:\n    rundir: %s\n    listen: [%s]\n" % (d, ", ".join(a + "@53" for a in listen)))
        c.write("log:\n  - target: stderr\n    any: warning\n")
        c.write("database:\n    storage: %s\n" % d)
        c.write("template:\n  - id: default\n    storage: %s\n    file: \"%%s.zone\"\n    zonefile-sync: -1\n"
                "    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n" % WORK)
        if zones:
            c.write("zone:\n" + "".join("  - domain: %s\n" % z for z in zones))
    return path


def start_knot(name, listen, zones):
    p = b.start(["knotd", "-c", knot_conf(name, listen, zones)], name)
    last = domain(N + TENTH)
    if zones:
        b.wait_until(lambda: all(b.dns_ok(a, 53, "%s._domainkey.%s" % (TOKENS[last][-1], last), 5) for a in listen),
                     180, name, 0.1)
    else:
        time.sleep(0.5)
    return p


def write_identities():
    path = os.path.join(WORK, "identities.json")
    with open(path, "w") as f:
        json.dump([{"name": d, "tokens": TOKENS[d]} for d in SES_DOMAINS], f)
    return path


def start_ses():
    p = b.start([sys.executable, os.path.join(ROOT, "tests/e2e/fake-ses.py"), "--listen", "127.0.0.1:%d" % SES_PORT,
                 "--identities", os.path.join(WORK, "identities.json"), "--page-size", "100",
                 "--access-key-id", "AKIDSOAK", "--region", "us-east-1"], "fake-ses-%d" % int(time.time() - t0))
    b.wait_until(lambda: port_open(SES_PORT), 30, "fake SES", 0.1)
    return p


def port_open(port):
    import socket
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata><org_name>soak.example</org_name><email>dmarc@soak.example</email>
    <report_id>soak-{n}</report_id><date_range><begin>{begin}</begin><end>{end}</end></date_range>
  </report_metadata>
  <policy_published><domain>{domain}</domain><p>none</p></policy_published>
{rows}</feedback>
"""
ROW = """  <record>
    <row><source_ip>192.0.2.{ip}</source_ip><count>{count}</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>{domain}</header_from></identifiers>
    <auth_results><dkim><domain>{domain}</domain><selector>{selector}</selector><result>pass</result></dkim>
      <spf><domain>{domain}</domain><result>pass</result></spf></auth_results>
  </record>
"""


def write_report(n):
    """One aggregate report (gzip) about a domain of both lists and each of its selectors."""
    d = LISTS["a"][(n * 7919) % (N - 2 * TENTH) + TENTH]
    now = int(time.time())
    rows = "".join(ROW.format(ip=k + 1, count=10 + n, domain=d, selector=t) for k, t in enumerate(TOKENS[d]))
    xml = REPORT.format(n=n, begin=now - 86400, end=now - 60, domain=d, rows=rows)
    path = os.path.join(WORK, "dmarc", "soak.example!%s!%d.xml.gz" % (d, n))
    with gzip.open(path + ".tmp", "wb") as f:
        f.write(xml.encode())
    os.replace(path + ".tmp", path)


# --- load --------------------------------------------------------------------------------------

PROM_ACCEPT = ("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1")
scrapes = {k: [] for k in PORTS}   # (t, seconds, bytes, status) since the last sample
latest = {k: {} for k in PORTS}    # what the latest scrape said (a few small families)
failures = {"scrape": 0, "probe": 0, "page": 0}
probe_count = [0]
page_count = [0]

WATCHED = ("dkim_check_rounds_total", "dkim_check_round_duration_seconds", "dkim_resolver_up",
           "dkim_ses_discovery_success", "dkim_dmarc_source_up", "dkim_exporter_records",
           "dkim_exporter_config_last_reload_successful")


def small_families(body):
    """{series: value} of the WATCHED families of a scrape."""
    out = {}
    fam = b.families(body)
    for name in WATCHED:
        if name not in fam:
            continue
        a, z = fam[name]
        for line in body[a:z].decode().splitlines():
            if line and line[0] != "#":
                series, value = line.rsplit(" ", 1)
                out[series] = float(value)
    return out


def scraper(kind):
    port = PORTS[kind]
    conn = None
    while not stopping.is_set():
        start = time.time()
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("GET", "/metrics", headers={"Accept": PROM_ACCEPT, "Accept-Encoding": "gzip",
                                                     "X-Prometheus-Scrape-Timeout-Seconds": "10"})
            r = conn.getresponse()
            body = r.read()
            took = time.time() - start
            with lock:
                scrapes[kind].append((start, took, len(body), r.status))
            if r.status == 200:
                parsed = small_families(body)
                with lock:
                    latest[kind] = parsed
                observe(kind, parsed)
            else:
                failures["scrape"] += 1
        except (OSError, http.client.HTTPException):
            failures["scrape"] += 1
            conn = None
        stopping.wait(max(0.0, 1.0 - (time.time() - start)))


def prober():
    conn = None
    k = 0
    next_at = time.time()
    while not stopping.is_set():
        d = LISTS["a"][(k * 31) % len(LISTS["a"])]
        k += 1
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", PORTS["full"], timeout=10)
            conn.request("GET", "/probe?target=%s&provider=ses&%s" % (d, "&".join("selector=" + t for t in TOKENS[d])))
            r = conn.getresponse()
            body = r.read()
            if r.status != 200 or b"dkim_probe_success 1" not in body:
                failures["probe"] += 1
            probe_count[0] += 1
        except (OSError, http.client.HTTPException):
            failures["probe"] += 1
            conn = None
        next_at += 1 / 20
        stopping.wait(max(0.0, next_at - time.time()))


def pager():
    while not stopping.wait(5):
        for kind, port in PORTS.items():
            try:
                status, _ = b.get(port, "/", 30)
                page_count[0] += 1
                if status != 200:
                    failures["page"] += 1
            except (OSError, http.client.HTTPException):
                failures["page"] += 1


# --- faults and what the daemons said of them ---------------------------------------------------

# Each fault: (name, start minute within every 10, end minute, the series, its value while it holds)
FAULTS = [
    ("r3 drops all traffic", 2.0, 4.0, 'dkim_resolver_up{resolver="r3"}', 0.0),
    ("r4 answers REFUSED", 5.0, 6.0, 'dkim_resolver_up{resolver="r4"}', 0.0),
    ("fake SES down", 6.5, 9.5, 'dkim_ses_discovery_success{source="%s"}' % SES_SOURCE, 0.0),
]
# per (daemon, fault): occurrences [{"start", "end", "seen", "cleared"}]
occurrences = {(k, f[0]): [] for k in PORTS for f in FAULTS}


def observe(kind, parsed):
    now = time.time()
    with lock:
        for name, _, _, series, bad in FAULTS:
            occ = occurrences[(kind, name)]
            if not occ:
                continue
            last = occ[-1]
            value = parsed.get(series)
            if value is None:
                continue
            if value == bad and now >= last["start"]:
                last["seen"] = last["seen"] or now
            elif value != bad and last["seen"] and last["end"] and now >= last["end"]:
                last["cleared"] = last["cleared"] or now


def fault_loop(procs):
    """Runs the faults on their 10-minute schedule until the end."""
    done = set()
    while not stopping.wait(0.5) and not schedule_over.is_set():
        minute = (time.time() - t0) / 60
        cycle, within = int(minute // 10), minute % 10
        for name, start, end, _, _ in FAULTS:
            key = (cycle, name)
            if within >= start and (key, "on") not in done and within < end:
                done.add((key, "on"))
                fault(name, True, procs)
                with lock:
                    for k in PORTS:
                        occurrences[(k, name)].append({"start": time.time(), "end": None, "seen": None, "cleared": None})
            if within >= end and (key, "on") in done and (key, "off") not in done:
                done.add((key, "off"))
                fault(name, False, procs)
                with lock:
                    for k in PORTS:
                        occurrences[(k, name)][-1]["end"] = time.time()


def iptables(op):
    for proto in ("udp", "tcp"):
        subprocess.run(["iptables", op, "INPUT", "-d", DROPPED + "/32", "-p", proto, "--dport", "53", "-j", "DROP"],
                       check=True)


def fault(name, on, procs):
    event("%s: %s" % (name, "begins" if on else "ends"))
    if name.startswith("r3"):
        iptables("-I" if on else "-D")
    elif name.startswith("r4"):
        b.stop(procs["r4"])
        if on:
            procs["r4"] = start_knot("r4-refusing", [REFUSING], [])
        else:
            procs["r4"] = start_knot("r4", [REFUSING], ZONES)
    else:
        if on:
            b.stop(procs["ses"])
        else:
            procs["ses"] = start_ses()


# --- sampling ----------------------------------------------------------------------------------

def proc_figures(pid):
    fds = sockets = 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        fds += 1
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                sockets += 1
        except OSError:
            pass
    threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_mib": b.vmrss(pid), "hwm_mib": b.vmhwm(pid), "fds": fds, "sockets": sockets,
            "threads": threads, "cpu_s": b.cpu_s(pid)}


def percentile(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def sample(daemons):
    rows = []
    for kind, p in daemons.items():
        row = {"t": round(time.time() - t0, 1), "daemon": kind}
        row.update(proc_figures(p.pid))
        with lock:
            window = scrapes[kind]
            scrapes[kind] = []
            said = dict(latest[kind])
        lat = [s[1] for s in window if s[3] == 200]
        row.update({
            "scrapes": len(lat),
            "scrape_p50_ms": round(percentile(lat, 0.5) * 1000, 1),
            "scrape_p99_ms": round(percentile(lat, 0.99) * 1000, 1),
            "scrape_max_ms": round(max(lat) * 1000, 1) if lat else float("nan"),
            "scrape_bytes": window[-1][2] if window else 0,
            "rounds": said.get("dkim_check_rounds_total", 0),
            "round_s": said.get("dkim_check_round_duration_seconds", float("nan")),
            "records": said.get("dkim_exporter_records", 0),
        })
        rows.append(row)
    return rows


# --- the end -----------------------------------------------------------------------------------

def record_series(port):
    """{(domain, selector)} of dkim_record_resolvers_agree on a scrape."""
    _, body = b.get(port, "/metrics", 60)
    fam = b.families(body)
    a, z = fam["dkim_record_resolvers_agree"]
    return set(re.findall(rb'dkim_record_resolvers_agree\{domain="([^"]+)",selector="([^"]+)"\}', body[a:z]))


def trend(rows, key, slack):
    """(second quarter's median, last quarter's median, flat?) after the warm-up."""
    values = [r[key] for r in rows if r["t"] >= WARMUP * 60]
    if len(values) < 8:
        return float("nan"), float("nan"), False
    q = len(values) // 4
    q2, q4 = statistics.median(values[q:2 * q]), statistics.median(values[3 * q:])
    return q2, q4, q4 <= q2 * 1.05 or q4 <= q2 + slack


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    panels = [("rss_mib", "RSS (MiB)"), ("fds", "open descriptors"), ("threads", "threads"),
              ("scrape_p99_ms", "/metrics p99 in 10 s (ms)")]
    for ax, (key, label) in zip(axes, panels):
        for kind in PORTS:
            xs = [r["t"] / 60 for r in rows if r["daemon"] == kind]
            ys = [r[key] for r in rows if r["daemon"] == kind]
            ax.plot(xs, ys, label=kind, linewidth=1)
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.axvline(WARMUP, color="grey", linestyle=":", linewidth=1)
        for minute in range(0, int(MINUTES) + 1, 10):
            for _, start, end, _, _ in FAULTS:
                if minute + start < MINUTES:
                    ax.axvspan(minute + start, min(minute + end, MINUTES), color="red", alpha=0.05)
    axes[0].legend(loc="upper left")
    axes[-1].set_xlabel("minutes (shaded: a fault; dotted: end of warm-up)")
    fig.suptitle("dkim_exporter soak: %d domains x 3 records, 4 resolvers, interval %s"
                 % (N, INTERVAL))
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main():
    global t0
    b.watchdog()
    os.makedirs(os.path.join(WORK, "dmarc"), exist_ok=True)
    for n in range(20):
        write_report(n)
    write_identities()
    procs = {
        "knot": start_knot("knot", RESOLVERS[:3], ZONES),
        "r4": start_knot("r4", [REFUSING], ZONES),
    }
    procs["ses"] = start_ses()
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDSOAK", AWS_SECRET_ACCESS_KEY="soak", AWS_EC2_METADATA_DISABLED="true",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    daemons, configs = {}, {}
    for kind, port in PORTS.items():
        configs[kind] = os.path.join(WORK, "%s.yaml" % kind)
        write_config(configs[kind], kind, "a")
        daemons[kind] = b.start([EXE, "--config.file", configs[kind], "--web.listen-address", "127.0.0.1:%d" % port],
                                "exporter-%s" % kind, env=env)
    for kind, port in PORTS.items():
        b.wait_until(lambda: b.ready(port), 600, "%s ready" % kind, 0.2)
    event("both daemons ready")
    t0 = time.time()
    threads = [threading.Thread(target=scraper, args=(k,), daemon=True) for k in PORTS]
    threads += [threading.Thread(target=f, daemon=True) for f in (prober, pager)]
    threads.append(threading.Thread(target=fault_loop, args=(procs,), daemon=True))
    for t in threads:
        t.start()
    rows = []
    which, reports = "a", 20
    next_sample = next_reload = next_report = t0
    end = t0 + MINUTES * 60
    with open(os.path.join(OUT, "samples.csv"), "w", newline="") as f:
        out = None
        while time.time() < end:
            now = time.time()
            if now >= next_sample:
                next_sample += 10
                for row in sample(daemons):
                    rows.append(row)
                    if out is None:
                        out = csv.DictWriter(f, fieldnames=list(row))
                        out.writeheader()
                    out.writerow(row)
                f.flush()
                for kind, p in daemons.items():
                    if p.poll() is not None:
                        raise SystemExit("the %s daemon exited (%s)" % (kind, p.returncode))
            if now >= next_reload + 60:
                next_reload += 60
                which = "b" if which == "a" else "a"
                for kind, p in daemons.items():
                    write_config(configs[kind], kind, which)
                    p.send_signal(signal.SIGHUP)
            if now >= next_report + 300:
                next_report += 300
                write_report(reports)
                reports += 1
            time.sleep(0.2)
    # The end: the fault schedule stops and any fault still on ends; the scrapes go on until
    # each daemon has cleared it (or 3 minutes), and a round has run since the last reload.
    schedule_over.set()
    for name, _, _, _, _ in FAULTS:
        with lock:
            open_fault = occurrences[("full", name)] and occurrences[("full", name)][-1]["end"] is None
        if open_fault:
            fault(name, False, procs)
            with lock:
                for k in PORTS:
                    occurrences[(k, name)][-1]["end"] = time.time()
    grace = time.time() + 180
    while time.time() < grace:
        with lock:
            pending = [o for occ in occurrences.values() for o in occ if o["seen"] and not o["cleared"]]
        if not pending and time.time() >= end + 3 * INTERVAL_S:
            break
        time.sleep(1)
    stopping.set()
    expected = {(d.encode(), t.encode()) for d in LISTS[which] + SES_DOMAINS for t in TOKENS[d]}
    lost = {}
    for kind, port in PORTS.items():
        seen = record_series(port)
        lost[kind] = (len(expected - seen), len(seen - expected))
    final = {kind: proc_figures(p.pid) for kind, p in daemons.items()}
    report(rows, lost, final)
    plot(rows, os.path.join(OUT, "soak.png"))
    with open(os.path.join(OUT, "events.log"), "w") as f:
        f.write("\n".join(events) + "\n")


def report(rows, lost, final):
    lines = ["| figure | full | summary |", "|---|---|---|"]
    verdict = []
    by = {k: [r for r in rows if r["daemon"] == k] for k in PORTS}

    def cell(kind, key, fmt="%.1f"):
        after = [r[key] for r in by[kind] if r["t"] >= WARMUP * 60]
        return (fmt + " → " + fmt + " (min %s, max %s)") % (after[0], after[-1], fmt % min(after), fmt % max(after)) \
            if after else "-"

    for key, label, slack in (("rss_mib", "RSS, MiB", 0), ("fds", "open descriptors", 4),
                              ("sockets", "sockets", 4), ("threads", "threads", 4)):
        cells = []
        for kind in PORTS:
            q2, q4, flat = trend(by[kind], key, slack)
            cells.append("%s; quarters 2 and 4: %.1f, %.1f (%s)" % (cell(kind, key), q2, q4, "flat" if flat else "RISES"))
            if not flat:
                verdict.append("%s %s rises: median %.1f in the second quarter, %.1f in the last" % (kind, label, q2, q4))
        lines.append("| %s | %s |" % (label, " | ".join(cells)))
    cells = []
    for kind in PORTS:
        hwm = final[kind]["hwm_mib"]
        cells.append("%.1f" % hwm)
    lines.append("| VmHWM at the end, MiB | %s |" % " | ".join(cells))
    cells = []
    for kind in PORTS:
        after = [r for r in by[kind] if r["t"] >= WARMUP * 60 and r["scrapes"]]
        p99 = max((r["scrape_p99_ms"] for r in after), default=float("nan"))
        med = statistics.median([r["scrape_p50_ms"] for r in after]) if after else float("nan")
        size = after[-1]["scrape_bytes"] if after else 0
        cells.append("p50 %.0f ms (median of windows), worst window p99 %.0f ms; %s bytes" % (med, p99, format(size, ",")))
    lines.append("| /metrics every second | %s |" % " | ".join(cells))
    cells = []
    for kind in PORTS:
        after = [r for r in by[kind] if r["t"] >= WARMUP * 60]
        if len(after) < 2:
            cells.append("-")
            continue
        rounds = after[-1]["rounds"] - after[0]["rounds"]
        due = (after[-1]["t"] - after[0]["t"]) / INTERVAL_S
        worst = max(r["round_s"] for r in after)
        on_time = rounds >= int(due) - 1
        # each round once: its length as the first sample after it completed saw it
        long_rounds, last = [], None
        for r in after:
            if r["rounds"] != last:
                last = r["rounds"]
                if r["round_s"] > INTERVAL_S + 2:
                    long_rounds.append("%.0f s at minute %.1f" % (r["round_s"], r["t"] / 60))
        cells.append("%d rounds in %.0f s (due %.1f), longest %.1f s (%s); longer than the interval + 2 s: %s" %
                     (rounds, after[-1]["t"] - after[0]["t"], due, worst, "on time" if on_time else "LATE",
                      ", ".join(long_rounds) or "none"))
        if not on_time:
            verdict.append("%s: %d rounds where %.1f were due" % (kind, rounds, due))
    lines.append("| rounds (interval %s) | %s |" % (INTERVAL, " | ".join(cells)))
    cells = []
    for kind in PORTS:
        missing, extra = lost[kind]
        cells.append("%d missing, %d of removed domains" % (missing, extra))
        if missing or extra:
            verdict.append("%s: %d configured records without series, %d removed ones still there" % (kind, missing, extra))
    lines.append("| records at the end | %s |" % " | ".join(cells))
    for name, _, _, series, _ in FAULTS:
        cells = []
        for kind in PORTS:
            occ = occurrences[(kind, name)]
            seen = sum(1 for o in occ if o["seen"])
            cleared = sum(1 for o in occ if o["cleared"])
            lag = [o["seen"] - o["start"] for o in occ if o["seen"]]
            cells.append("%d times: seen %d, cleared %d (seen after %s s)" %
                         (len(occ), seen, cleared, ", ".join("%.0f" % x for x in lag) or "-"))
            if seen < len(occ) or cleared < len(occ):
                verdict.append("%s, %s: %d occurrences, seen %d, cleared %d" % (kind, name, len(occ), seen, cleared))
        lines.append("| %s (`%s`) | %s |" % (name, series, " | ".join(cells)))
    lines.append("| load | scrapes 1/s each, %d probes (%d failed), %d status pages (%d failed), %d failed scrapes | |"
                 % (probe_count[0], failures["probe"], page_count[0], failures["page"], failures["scrape"]))
    if failures["scrape"]:
        verdict.append("%d scrapes failed" % failures["scrape"])
    text = "\n".join(lines) + "\n\nverdict: " + ("PASS" if not verdict else "FAIL\n- " + "\n- ".join(verdict)) + "\n"
    header = ("soak: %d domains (%d in the config, %d from SES) x 3 records, 4 resolvers, "
              "interval %s, %.0f minutes (the first %.0f warm-up), %s\n\n"
              % (N, len(LISTS["a"]), len(SES_DOMAINS), INTERVAL, MINUTES, WARMUP, EXE))
    with open(os.path.join(OUT, "soak.md"), "w") as f:
        f.write(header + text)
    print(header + text)


if __name__ == "__main__":
    try:
        main()
    finally:
        stopping.set()
        for p in b.procs:
            if p.poll() is None:
                p.kill()
