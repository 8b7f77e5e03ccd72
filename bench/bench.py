#!/usr/bin/env python3
"""dkim_exporter benchmark orchestrator; run through bench/run, which installs tools and cleans up.

Environment: BENCH_WORK (scratch dir, required), BENCH_SIZES (default "1000 10000"),
BENCH_DURATION (seconds for dnsperf / wrk runs, default 15), BENCH_POLITE_SECONDS (default 20),
BENCH_SCRAPES (default 100),
BENCH_AUTH_SIZES (sizes whose scrape test runs with authoritative: true, default "1000"),
BENCH_RSS_LIMIT_MB (an exporter above this RSS is killed to protect the machine, default 4096), BENCH_EXPORTER (binary, default target/release/dkim_exporter),
BENCH_SCRAPE_SECONDS (time budget of each size's and mode's scrape series, default 120: at least 10 scrapes,
then it stops early and says so), BENCH_SHARDS (replicas of the shard run at the largest size, default 3; 0 = skip),
BENCH_GEN_SECONDS (set by bench/run: how long gen.py took).
Every process started is recorded in $BENCH_WORK/pids for bench/run's trap.
"""
import concurrent.futures
import http.client
import os
import platform
import re
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORK = os.environ["BENCH_WORK"]
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "1000 10000").split()]
DUR = int(os.environ.get("BENCH_DURATION", "15"))
POLITE_S = int(os.environ.get("BENCH_POLITE_SECONDS", "20"))
SCRAPES = int(os.environ.get("BENCH_SCRAPES", "100"))
AUTH_SIZES = [int(x) for x in os.environ.get("BENCH_AUTH_SIZES", "1000").split()]
RSS_LIMIT_MB = float(os.environ.get("BENCH_RSS_LIMIT_MB", "4096"))
EXE = os.environ.get("BENCH_EXPORTER", os.path.join(ROOT, "target/release/dkim_exporter"))
SCRAPE_S = float(os.environ.get("BENCH_SCRAPE_SECONDS", "120"))
LIVE_SCRAPES = int(os.environ.get("BENCH_LIVE_SCRAPES", "30"))
LIVE_FULL_MAX = 10000   # full-detail scrapes while rounds run up to this size (823 MB each at 100,000)
SHARDS = int(os.environ.get("BENCH_SHARDS", "3"))
GEN_S = os.environ.get("BENCH_GEN_SECONDS")
KNOT = ["127.0.0.%d" % (100 + k) for k in range(1, 5)]
PORT = 19053
BB_PORT = 19115
procs = []
rows = []  # (figure, value, note)


def log(*a):
    print("[bench %s]" % time.strftime("%H:%M:%S"), *a, file=sys.stderr, flush=True)


def start(args, name, **kw):
    out = open(os.path.join(WORK, name + ".log"), "w")
    p = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, **kw)
    with open(os.path.join(WORK, "pids"), "a") as f:
        f.write("%d\n" % p.pid)
    procs.append(p)
    return p


killed = {}


def watchdog():
    """Kill any exporter whose RSS exceeds RSS_LIMIT_MB (records it in `killed`)."""
    import threading

    def loop():
        while True:
            for p in list(procs):
                if p.poll() is None and p.args and p.args[0] == EXE:
                    try:
                        rss = vmrss(p.pid)
                    except OSError:
                        continue
                    if rss > RSS_LIMIT_MB:
                        killed[p.pid] = rss
                        log("RSS %.0f MiB > limit: killing exporter %d" % (rss, p.pid))
                        p.kill()
            time.sleep(0.2)

    threading.Thread(target=loop, daemon=True).start()


def cpu_s(pid):
    """utime + stime of pid from /proc, in seconds (finer than process_cpu_seconds_total)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vmrss(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def stop(p, sig=signal.SIGTERM):
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def dns_ok(ip, port, name, qtype=6):
    """Whether a query for name (SOA by default; 5 for CNAME) gets an answer."""
    q = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0"
    q += struct.pack(">HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    try:
        s.sendto(q, (ip, port))
        r = s.recv(4096)
        return (r[3] & 0xF) == 0 and struct.unpack(">H", r[6:8])[0] > 0
    except OSError:
        return False
    finally:
        s.close()


def get(port, path, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


# Families with a series per record, record x resolver or domain: at 100,000 domains they are
# hundreds of MB, too much to parse in Python at every poll. metrics() sums every other family
# and keeps where these are in the body (`families`), for the few figures that need them.
BIG = ("dkim_record_", "dkim_domain_", "dkim_key_length")


def families(body):
    """{family name: (start, end)} of each `# HELP` block of a Prometheus text body."""
    out, pos = {}, 0
    starts = []
    while True:
        i = body.find(b"# HELP ", pos)
        if i < 0:
            break
        if i == 0 or body[i - 1] == 10:
            starts.append(i)
        pos = i + 7
    for k, i in enumerate(starts):
        name = body[i + 7:body.index(b" ", i + 7)].decode()
        out[name] = (i, starts[k + 1] if k + 1 < len(starts) else len(body))
    return out


def parse_lines(text, m):
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        name = re.split(r"[{ ]", line, 1)[0]
        try:
            m[name] = m.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass


def metrics(port, keep=False):
    """Sums of every series by name, but for the BIG families (use body_of / ones_in for those).
    With keep, also returns the body and its families."""
    _, body = get(port, "/metrics")
    fam = families(body)
    m = {}
    if not fam:
        parse_lines(body.decode(), m)
    for name, (a, b) in fam.items():
        if not name.startswith(BIG):
            parse_lines(body[a:b].decode(), m)
    # the one BIG figure the rounds need, cheaply: series of dkim_record_correct equal to 1
    if "dkim_record_correct" in fam:
        a, b = fam["dkim_record_correct"]
        m["dkim_record_correct"] = float(body.count(b"} 1\n", a, b))
    return (m, body, fam) if keep else m


def label_values(body, fam, name, label):
    """The values of `label` in the series of family `name`."""
    if name not in fam:
        return []
    a, b = fam[name]
    return [v.decode() for v in re.findall(rb'\n' + name.encode() + rb'\{[^\n]*?' + label.encode() + rb'="([^"]*)"', body[a:b])]


def series_count(body):
    return body.count(b"\n") - body.count(b"\n#") - (1 if body.startswith(b"#") else 0)


def wait_until(pred, limit, what, step=0.2):
    end = time.time() + limit
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise SystemExit("timed out waiting for " + what)


def page_round(port):
    """(rounds completed, the latest one's length in s) from the status page, with a filter that
    matches no domain, so that the page is cheap to build: (0, None) before the first round."""
    _, body = get(port, "/?q=no-such-domain-bench&refresh=0")
    found = re.search(rb"round (\d+) took ([\d.]+) s", body)
    return (int(found.group(1)), float(found.group(2))) if found else (0, None)


def vmhwm(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def ready(port):
    try:
        return get(port, "/-/ready", 2)[0] == 200
    except OSError:
        return False


def reload_and_settle(p, port, cfg_src, extra_rounds):
    """Install cfg_src as the config, SIGHUP, wait for the round in progress and `extra_rounds` more."""
    with open(cfg_src) as s, open(os.path.join(WORK, "exporter.yaml.tmp"), "w") as d:
        d.write(s.read())
    os.replace(os.path.join(WORK, "exporter.yaml.tmp"), os.path.join(WORK, "exporter.yaml"))
    m0 = metrics(port)
    r0 = m0.get("dkim_check_rounds_total", 0)
    p.send_signal(signal.SIGHUP)
    t0 = time.time()
    if extra_rounds:
        wait_until(lambda: page_round(port)[0] >= r0 + 1 + extra_rounds, 300, "rounds after reload", 0.5)
    else:
        # the new config may already drive the next round (interval 1h: it never ends here), so
        # settle when the round in progress ends or 3 s have passed, and the query rate has
        # dropped to a trickle (the 1 h round spreads N x 12 checks and their key follow-ups
        # over the hour: 3x that rate, at least 200 qps). With rounds longer than the interval
        # two are in flight, hence the rate test after the round count too.
        prev = [m0.get("dkim_dns_queries_total", 0), time.time()]
        trickle = max(200.0, 3 * n_domains(cfg_src) * 15 / 3600.0)

        def settled():
            m = metrics(port)
            q, t = m.get("dkim_dns_queries_total", 0), time.time()
            rate = (q - prev[0]) / max(t - prev[1], 1e-3)
            prev[:] = [q, t]
            return (m.get("dkim_check_rounds_total", 0) >= r0 + 1 or time.time() - t0 > 3) and rate < trickle

        wait_until(settled, 300, "settle after reload", 1.0)
    return time.time() - t0


def n_domains(cfg):
    m = re.search(r"-(\d+)\.yaml$", cfg)
    return int(m.group(1)) if m else 1000


def install(src, dst):
    """Copy src to dst through a rename, so an exporter never reads half a file."""
    with open(src) as s_, open(dst + ".tmp", "w") as d_:
        d_.write(s_.read())
    os.replace(dst + ".tmp", dst)


def start_exporter(cfg, port, name, extra=()):
    return start([EXE, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % port, "--log.level", "warn",
                  *extra], name)


def scrape_series(port, mode, n):
    """Up to SCRAPES sequential GETs of /metrics (full body read): p50 / p99 / max in ms, and the
    last body. Stops after SCRAPE_S seconds once 10 are done (says so in `cut`)."""
    lat, body, st = [], None, None
    t0 = time.time()
    for k in range(SCRAPES):
        if k >= 10 and time.time() - t0 > SCRAPE_S:
            break
        body = None  # not two bodies at once: 823 MB each in full mode at 100,000 domains
        s0 = time.perf_counter()
        st, body = get(port, "/metrics", 120)
        lat.append(time.perf_counter() - s0)
    lat.sort()
    return {
        "p50": statistics.median(lat) * 1000,
        "p99": lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)] * 1000,
        "max": lat[-1] * 1000,
        "n": len(lat),
        "cut": len(lat) < SCRAPES,
        "secs": time.time() - t0,
        "status": st,
        "bytes": len(body),
        "series": series_count(body),
        "body": body,
    }


def scrape_once(port, timeout=120):
    """One GET /metrics read to the end in 1 MiB pieces (the body is not kept): seconds,
    status, bytes."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    s0 = time.perf_counter()
    c.request("GET", "/metrics", headers={"Accept": "text/plain;version=0.0.4;q=0.9,*/*;q=0.1"})
    resp = c.getresponse()
    size = 0
    while True:
        piece = resp.read(1 << 20)
        if not piece:
            break
        size += len(piece)
    c.close()
    return time.perf_counter() - s0, resp.status, size


def live_scrapes(p, port):
    """/metrics while rounds run (interval 1 s): LIVE_SCRAPES scrapes one a second (as a
    Prometheus scraping every second would; back to back, they would starve the rounds they
    are meant to run beside), then 5 times 4 at once, a second apart; latency of each,
    failures, rounds completed meanwhile, and VmHWM after (the rounds' peak and the scrapes')."""
    r0, _ = page_round(port)

    def paced(scrape):
        s0 = time.time()
        got = scrape()
        time.sleep(max(0.0, 1.0 - (time.time() - s0)))
        return got
    seq = [paced(lambda: scrape_once(port)) for _ in range(LIVE_SCRAPES)]
    conc = []
    for _ in range(5):
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            conc += paced(lambda: list(ex.map(lambda _: scrape_once(port), range(4))))
    r1, _ = page_round(port)

    def pct(xs, q):
        xs = sorted(x[0] * 1000 for x in xs)
        return xs[min(len(xs) - 1, int(round(q * len(xs))) - 1)] if q < 1 else xs[-1]
    return {
        "n": len(seq), "p50": pct(seq, 0.5), "p99": pct(seq, 0.99), "max": pct(seq, 1),
        "conc_n": len(conc), "conc_p50": pct(conc, 0.5), "conc_max": pct(conc, 1),
        "failed": sum(1 for x in seq + conc if x[1] != 200),
        "bytes": seq[-1][2], "rounds": r1 - r0, "hwm": vmhwm(p.pid),
    }


def reload_memory(p, port, cfg):
    """RSS across a reload in the steady state: VmRSS every 20 ms from 1 s before a POST
    /-/reload until 2 s after it returned; the config in force with its last domain removed.
    VmHWM is reset (clear_refs 5) just before the reload, so it gives the exact peak too."""
    import threading
    text = open(cfg).read()
    smaller = text[:text.rindex("\n  - domain: ") + 1]
    samples, done = [], threading.Event()

    def sampler():
        while not done.is_set():
            try:
                samples.append((time.time(), vmrss(p.pid)))
            except OSError:
                return
            time.sleep(0.02)

    th = threading.Thread(target=sampler, daemon=True)
    th.start()
    time.sleep(1.0)
    with open(cfg + ".tmp", "w") as f:
        f.write(smaller)
    os.replace(cfg + ".tmp", cfg)
    try:
        with open("/proc/%d/clear_refs" % p.pid, "w") as f:
            f.write("5")
        hwm_reset = True
    except OSError:
        hwm_reset = False
    t_reload = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("POST", "/-/reload")
    resp = c.getresponse()
    answer = resp.read().decode(errors="replace").strip()
    c.close()
    t_done = time.time()
    time.sleep(2.0)
    done.set()
    th.join()
    hwm = vmhwm(p.pid) if hwm_reset else float("nan")
    before = [v for t, v in samples if t < t_reload]
    during = [v for t, v in samples if t >= t_reload]
    steady = statistics.median(before)
    peak = max(during + ([hwm] if hwm_reset else []))
    m = metrics(port)
    return {
        "status": resp.status, "answer": answer, "secs": t_done - t_reload, "steady": steady,
        "steady_range": (min(before), max(before)), "peak_sampled": max(during), "hwm": hwm, "peak": peak,
        "ratio": peak / steady, "after": during[-1], "samples": len(samples),
        "records": m.get("dkim_exporter_records", float("nan")),
        "ok": m.get("dkim_exporter_config_last_reload_successful", float("nan")),
    }


def run_shards(n):
    """SHARDS exporters, --shard I/SHARDS, the same rounds-N config, each on its own port, at
    once against the same Knot. Each is scraped once right after its first round."""
    cfg = os.path.join(WORK, "rounds-%d.yaml" % n)
    with open(os.path.join(WORK, "domains.txt")) as f:
        everyone = set(l.strip() for _, l in zip(range(n), f))
    reps = []
    for i in range(SHARDS):
        port = PORT + 2 + i
        reps.append({"i": i, "port": port, "t0": time.time(),
                     "p": start_exporter(cfg, port, "exporter-shard-%d" % i, ["--shard", "%d/%d" % (i, SHARDS)])})
    import threading
    deadline = time.time() + 900

    def watch(rep):
        # its own thread, so a scrape of another replica does not delay seeing this one ready
        while time.time() < deadline and rep["p"].poll() is None:
            if ready(rep["port"]):
                rep["ready_s"] = time.time() - rep["t0"]
                return
            time.sleep(0.1)

    for rep in reps:
        threading.Thread(target=watch, args=(rep,), daemon=True).start()
    pending = list(reps)
    while pending and time.time() < deadline:
        for rep in list(pending):
            if rep["p"].poll() is not None:
                rep["fail"] = "exited (%s)" % ("killed by RSS guard at %.0f MiB" % killed[rep["p"].pid]
                                               if rep["p"].pid in killed else rep["p"].returncode)
                pending.remove(rep)
            elif "ready_s" in rep:
                rep["scraped_s"] = time.time() - rep["t0"]
                m, body, fam = metrics(rep["port"], keep=True)
                rep["records"] = m.get("dkim_exporter_records", float("nan"))
                rep["round_s"] = m.get("dkim_check_round_duration_seconds", float("nan"))
                rep["rounds"] = m.get("dkim_check_rounds_total", 0)
                rep["shortest"] = m.get("dkim_exporter_shortest_round_seconds", float("nan"))
                rep["interval"] = m.get("dkim_exporter_interval_seconds", float("nan"))
                doms = label_values(body, fam, "dkim_domain_healthy", "domain")
                rep["domains"], rep["domain_series"] = set(doms), len(doms)
                a, b = fam.get("dkim_domain_healthy", (0, 0))
                rep["healthy"] = body.count(b"} 1\n", a, b)
                rep["bytes"] = len(body)
                del body
                rep["rss"] = vmhwm(rep["p"].pid)
                log("shard %d/%d" % (rep["i"], SHARDS), {k: v for k, v in rep.items() if k not in ("p", "domains")})
                pending.remove(rep)
        time.sleep(0.2)
    for rep in pending:
        rep["fail"] = "not ready after 900 s"
    for rep in reps:
        stop(rep["p"])
    got = [rep.get("domains", set()) for rep in reps]
    union = set().union(*got)
    disjoint = sum(len(g) for g in got) == len(union)
    records = sum(rep.get("records", 0) for rep in reps)
    return {"n": n, "reps": reps, "union": len(union), "sum": sum(len(g) for g in got), "disjoint": disjoint,
            "complete": union == everyone, "missing": len(everyone - union), "extra": len(union - everyone),
            "records": records, "once": disjoint and union == everyone and records == 3 * n and
            not any("fail" in rep for rep in reps)}


def wrk(url, script, env):
    out = subprocess.run(["wrk", "-t2", "-c32", "-d%ds" % DUR, "--timeout", "10s", "-s", script, url],
                         capture_output=True, text=True, env=dict(os.environ, **env), timeout=DUR + 60).stdout
    with open(os.path.join(WORK, "wrk-%s.txt" % env.get("BENCH_TAG", "x")), "w") as f:
        f.write(out)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: (.*)", out)
    lat = re.search(r"Latency\s+(\S+)", out)
    return rps, int(non2xx.group(1)) if non2xx else 0, errs.group(1) if errs else "none", lat.group(1) if lat else "?"


def fmt(x, d=1):
    return "{:,.{}f}".format(x, d)


def main():
    nmax = max(SIZES)
    watchdog()
    facts = {
        "nproc": os.cpu_count(),
        "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
        "kernel": platform.release(),
        "mem": next(l.split(":", 1)[1].strip() for l in open("/proc/meminfo") if l.startswith("MemTotal")),
        "load_start": open("/proc/loadavg").read().split()[:3],
    }
    # --- Knot on 127.0.0.101-104:53 ---
    kdir = os.path.join(WORK, "knot")
    os.makedirs(kdir, exist_ok=True)
    with open(os.path.join(WORK, "knot.conf"), "w") as c:
        c.write("server:\n    rundir: %s\n    listen: [%s]\n" % (kdir, ", ".join(a + "@53" for a in KNOT)))
        c.write("log:\n  - target: stderr\n    any: warning\n")
        c.write("database:\n    storage: %s\n" % kdir)
        c.write("template:\n  - id: default\n    storage: %s\n    file: \"%%s.zone\"\n    zonefile-sync: -1\n"
                "    zonefile-load: whole\n    journal-content: none\n    semantic-checks: off\n" % WORK)
        c.write("zone:\n  - domain: bench.\n  - domain: dkim.amazonses.com.\n")
    # zone load: knotd start to both zones answering on the 4 addresses (the last name of each
    # zone too, so the whole file is in); the limit grows with the zones (300 s more at 100,000)
    last = os.path.getsize(os.path.join(WORK, "queries.txt"))
    with open(os.path.join(WORK, "queries.txt"), "rb") as f:
        f.seek(max(0, last - 200))
        last_name = f.read().decode().strip().splitlines()[-1].split()[0]
    tk = time.time()
    knot = start(["knotd", "-c", os.path.join(WORK, "knot.conf")], "knot")
    wait_until(lambda: all(dns_ok(a, 53, "bench.") and dns_ok(a, 53, "dkim.amazonses.com.") for a in KNOT)
               and dns_ok(KNOT[0], 53, last_name, 5), 120 + nmax * 0.003, "knot", 0.05)
    facts["knot_load"] = time.time() - tk
    facts["knot_rss"] = vmrss(knot.pid)
    facts["zone_bytes"] = sum(os.path.getsize(os.path.join(WORK, z)) for z in ("bench.zone", "dkim.amazonses.com.zone"))
    log("knot up in %.1f s" % facts["knot_load"])

    # --- dnsperf baseline ---
    out = subprocess.run(["dnsperf", "-s", KNOT[0], "-p", "53", "-d", os.path.join(WORK, "queries.txt"),
                          "-l", str(DUR), "-c", "4", "-Q", "1000000"], capture_output=True, text=True,
                         timeout=DUR + 60).stdout
    open(os.path.join(WORK, "dnsperf.txt"), "w").write(out)
    dnsperf_qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
    lost = re.search(r"Queries lost:\s+(\d+)", out).group(1)
    log("dnsperf", dnsperf_qps)

    # --- blackbox baseline ---
    tok = open(os.path.join(WORK, "queries.txt")).readline().split()[0]
    with open(os.path.join(WORK, "blackbox.yml"), "w") as c:
        c.write("modules:\n  dns_cname:\n    prober: dns\n    timeout: 2s\n    dns:\n"
                "      transport_protocol: udp\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n"
                "      query_name: \"%s\"\n      query_type: CNAME\n      recursion_desired: true\n"
                "      valid_rcodes: [NOERROR]\n" % tok)
    bb = start(["prometheus-blackbox-exporter", "--config.file", os.path.join(WORK, "blackbox.yml"),
                "--web.listen-address", "127.0.0.1:%d" % BB_PORT, "--log.level", "warn"], "blackbox")
    wait_until(lambda: ready_any(BB_PORT), 30, "blackbox")
    st, body = get(BB_PORT, "/probe?module=dns_cname&target=%s:53" % KNOT[0])
    bb_ok = b"\nprobe_success 1" in body
    bb_rps, bb_non2xx, bb_err, bb_lat = wrk("http://127.0.0.1:%d" % BB_PORT, os.path.join(HERE, "blackbox.lua"),
                                            {"BENCH_TAG": "blackbox"})
    stop(bb)
    log("blackbox", bb_rps, bb_ok)

    res = {}
    for n in SIZES:
        r = res[n] = {}
        cfg = os.path.join(WORK, "exporter.yaml")
        install(os.path.join(WORK, "rounds-%d.yaml" % n), cfg)
        t0 = time.time()
        p = start_exporter(cfg, PORT, "exporter-%d" % n)
        wait_until(lambda: ready(PORT), 600, "exporter ready", 0.1)
        r["first_round"] = time.time() - t0
        # Rounds are counted on the status page ("round N took X s"), asked with a filter that
        # matches no domain: it builds no card, so a poll costs milliseconds where a /metrics
        # render costs 0.1 s at 10,000 domains and 1.3 s at 100,000 (run 5 polled /metrics ten
        # times a second at 10,000 domains, and its CPU and memory figures included those
        # renders). The CPU window holds only these polls, a few a round; /metrics is read
        # before and after it, for the counters.
        # The window runs from one round's end to the third after it, so it holds three
        # rounds of work whatever the phase it started in.
        poll = max(0.25, r["first_round"] / 4)
        tm0 = time.time()
        m0 = metrics(PORT)
        limit = time.time() + (300 if n <= 10000 else 600)
        n0, _ = page_round(PORT)
        while page_round(PORT)[0] == n0 and time.time() < limit:
            time.sleep(min(poll, 0.1))
        t0, c0 = time.time(), cpu_s(p.pid)
        n0, _ = page_round(PORT)
        durs, last = [], n0
        while last < n0 + 3 and time.time() < limit:
            time.sleep(poll)
            k, took = page_round(PORT)
            if k > last:
                last = k
                durs.append(took)
        t1, c1 = time.time(), cpu_s(p.pid)
        tm1 = time.time()
        m1 = metrics(PORT)
        nr = max(1, last - n0)
        r["rounds"] = nr
        r["round_s"] = statistics.median(durs) if durs else m1["dkim_check_round_duration_seconds"]
        r["ndurs"] = len(durs)
        r["wall_per_round"] = (t1 - t0) / nr
        r["checks_s"] = n * 12 / r["round_s"]
        r["qps"] = (m1["dkim_dns_queries_total"] - m0["dkim_dns_queries_total"]) / (tm1 - tm0)
        r["cpu_round"] = (m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]) / max(1, m1["dkim_check_rounds_total"] - m0["dkim_check_rounds_total"])
        r["cpu_round_proc"] = (c1 - c0) / nr
        r["errors"] = m1.get("dkim_lookup_errors_total", 0)
        r["correct"] = m1.get("dkim_record_correct", 0)
        r["records"] = m1.get("dkim_exporter_records", float("nan"))
        r["shortest"] = m1.get("dkim_exporter_shortest_round_seconds", float("nan"))
        r["interval"] = m1.get("dkim_exporter_interval_seconds", float("nan"))
        r["rss_rounds"] = vmhwm(p.pid)
        log(n, "rounds", r)
        # /metrics while rounds run, full detail (at 100,000 domains the summary exporter's, below)
        if n <= LIVE_FULL_MAX:
            r["live"] = live_scrapes(p, PORT)
            log(n, "scrapes while rounds run", r["live"])

        # scrape cost: with authoritative checks (one full round with auth, then idle), or
        # without (the rounds' results, then idle)
        r["auth"] = n in AUTH_SIZES
        r["auth_fail"] = None
        if r["auth"]:
            ta = time.time()
            try:
                reload_and_settle(p, PORT, os.path.join(WORK, "auth-%d.yaml" % n), 1)
                ma = metrics(PORT)
                r["auth_round_s"] = ma["dkim_check_round_duration_seconds"]
                r["auth_wall"] = time.time() - ta
                r["rss_auth"] = vmhwm(p.pid)
                reload_and_settle(p, PORT, os.path.join(WORK, "authidle-%d.yaml" % n), 0)
            except (OSError, SystemExit, KeyError) as e:
                r["auth_fail"] = "%s after %.0f s (%s)" % (
                    ("killed by RSS guard at %.0f MiB" % killed[p.pid]) if p.pid in killed else "failed",
                    time.time() - ta, type(e).__name__)
                log(n, "auth phase", r["auth_fail"])
                stop(p)
                r["auth"] = False
        if r["auth_fail"]:
            # fall back: a fresh exporter, authoritative off, one round, then idle
            install(os.path.join(WORK, "rounds-%d.yaml" % n), cfg)
            p = start_exporter(cfg, PORT, "exporter-%d-b" % n)
            wait_until(lambda: ready(PORT), 600, "exporter ready", 0.1)
            reload_and_settle(p, PORT, os.path.join(WORK, "idle-%d.yaml" % n), 0)
        elif not r["auth"]:
            reload_and_settle(p, PORT, os.path.join(WORK, "idle-%d.yaml" % n), 0)
        sc = r["full"] = scrape_series(PORT, "full", n)
        if r["auth"]:
            r["auth_resolvers"] = sorted(set(v.decode() for v in re.findall(rb'resolver="(auth:[^"]+)"', sc.pop("body"))))
        sc.pop("body", None)
        r["rss_peak"] = vmhwm(p.pid)
        log(n, "scrape full", sc)

        # memory across a reload, in the steady state after the rounds and scrapes: the config
        # in force (idle-N, or authidle-N) with its last domain removed, POST /-/reload
        r["reload"] = reload_memory(p, PORT, cfg)
        log(n, "reload", r["reload"])
        stop(p)

        # summary mode (metrics.detail: summary): a fresh exporter, one round at interval 1s,
        # then reloaded to interval 1h like the full-mode one, and the same scrape series
        install(os.path.join(WORK, "rounds-summary-%d.yaml" % n), cfg)
        t0 = time.time()
        p = start_exporter(cfg, PORT, "exporter-summary-%d" % n)
        wait_until(lambda: ready(PORT), 600, "summary exporter ready", 0.1)
        r["summary_first_round"] = time.time() - t0
        r["summary_live"] = live_scrapes(p, PORT)
        log(n, "summary scrapes while rounds run", r["summary_live"])
        reload_and_settle(p, PORT, os.path.join(WORK, "idle-summary-%d.yaml" % n), 0)
        sc = r["summary"] = scrape_series(PORT, "summary", n)
        sc.pop("body", None)
        r["summary_rss"] = vmhwm(p.pid)
        stop(p)
        log(n, "scrape summary", sc)

        # /probe throughput: a second exporter, same records, interval 1h (its first round is
        # spread over an hour, so it is nearly idle), authoritative off: 12 checks per probe
        p2 = start_exporter(os.path.join(WORK, "idle-%d.yaml" % n), PORT + 1, "exporter-probe-%d" % n)
        wait_until(lambda: ready_any(PORT + 1), 120, "probe exporter up")
        st, body = get(PORT + 1, "/probe?target=d%05d.bench" % n)
        r["probe_ok"] = st == 200 and b"\ndkim_probe_success 1" in body
        r["probe_rps"], r["probe_non2xx"], r["probe_err"], r["probe_lat"] = wrk(
            "http://127.0.0.1:%d" % (PORT + 1), os.path.join(HERE, "probe.lua"), {"BENCH_N": str(n), "BENCH_TAG": "probe-%d" % n})
        r["probe_checks_s"] = r["probe_rps"] * 12
        stop(p2)
        log(n, "probe", r["probe_rps"], r["probe_ok"])

    # --- shards: SHARDS replicas of the largest size, --shard I/SHARDS, the same config ---
    shards = run_shards(nmax) if SHARDS > 1 else None

    # --- politeness: 50 qps per resolver, counted by a proxy in front of Knot ---
    pol = {}
    if 1000 <= nmax:
        counts = os.path.join(WORK, "polite-counts.txt")
        proxy = start([sys.executable, os.path.join(HERE, "countproxy.py"), "%s:53" % KNOT[0], counts] +
                      ["127.0.0.%d:5353" % (110 + k) for k in range(1, 5)], "countproxy")
        time.sleep(1)
        cfg = os.path.join(WORK, "exporter.yaml")
        with open(os.path.join(WORK, "polite-1000.yaml")) as s, open(cfg, "w") as d:
            d.write(s.read())
        p = start([EXE, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % PORT, "--log.level", "warn"],
                  "exporter-polite")
        time.sleep(POLITE_S)
        m = metrics(PORT)
        stop(p)
        time.sleep(0.5)
        stop(proxy)
        per = {}
        for line in open(counts):
            a, sec, c = line.split()
            per.setdefault(a, []).append(int(c))
        pol = {a: (max(v), sum(v)) for a, v in sorted(per.items())}
        pol_exporter = m.get("dkim_dns_queries_total", 0)
        pol_cap = (m.get("dkim_exporter_shortest_round_seconds", float("nan")),
                   m.get("dkim_exporter_interval_seconds", float("nan")), m.get("dkim_exporter_records", float("nan")))
    stop(knot)
    facts["load_end"] = open("/proc/loadavg").read().split()[:3]

    # --- table ---
    T = []
    T.append(("machine", "%s CPUs, %s, %s RAM, kernel %s" % (facts["nproc"], facts["cpu"], facts["mem"], facts["kernel"]), ""))
    T.append(("load average (1/5/15 min) at start / end", "%s / %s" % (" ".join(facts["load_start"]), " ".join(facts["load_end"])), "others may be using the CPUs"))
    if GEN_S:
        T.append(("data generation (gen.py, N=%d: zones, query file, configs)" % nmax, fmt(float(GEN_S), 1) + " s",
                  "%s domains x 3 records; zone files %s bytes" % (fmt(nmax, 0), fmt(facts["zone_bytes"], 0))))
    T.append(("Knot zone load (knotd start to both zones answering on the 4 addresses, N=%d)" % nmax,
              fmt(facts["knot_load"], 1) + " s", "knotd VmRSS then %.0f MiB; %s CNAME + %s TXT records" % (
                  facts["knot_rss"], fmt(3 * nmax, 0), fmt(3 * nmax, 0))))
    T.append(("dnsperf qps (1 address, -c 4, %ds)" % DUR, fmt(dnsperf_qps), "queries lost: %s" % lost))
    T.append(("blackbox_exporter probes/s = record checks/s (32 conns, %ds)" % DUR, fmt(bb_rps),
              "probe_success=%s, non-2xx %d, socket errors %s, mean latency %s" % (int(bb_ok), bb_non2xx, bb_err, bb_lat)))

    def scrape_note(sc):
        cut = "; stopped at %d of %d scrapes: BENCH_SCRAPE_SECONDS=%g s budget" % (sc["n"], SCRAPES, SCRAPE_S) if sc["cut"] else ""
        return "%d sequential in %.1f s%s" % (sc["n"], sc["secs"], cut)

    for n in SIZES:
        r = res[n]
        k = "N=%d (%d checks/round)" % (n, n * 12)
        T.append((k + ": first round (start to /-/ready)", fmt(r["first_round"], 2) + " s", ""))
        T.append((k + ": round duration (median of %d)" % r["ndurs"], fmt(r["round_s"], 2) + " s",
                  "wall per round %.2f s over %d rounds" % (r["wall_per_round"], r["rounds"]) +
                  "; rounds counted on the status page every %.2f s" % max(0.25, r["first_round"] / 4)))
        T.append((k + ": record checks/s (N*12 / round)", fmt(r["checks_s"]), ""))
        T.append((k + ": exporter DNS qps (counter delta / wall)", fmt(r["qps"]),
                  "lookup errors total %d; correct series %d of %d" % (r["errors"], r["correct"], n * 12)))
        # Checks are spread over the interval, and 1 s is the shortest interval the config
        # accepts: a round that takes the interval measures the schedule, not the capacity.
        paced = r["round_s"] < 1.05
        T.append((k + ": exporter qps / dnsperf qps", "%.1f %%" % (100 * r["qps"] / dnsperf_qps),
                  "target >= 30 %" + ("; the round takes the 1 s interval (the shortest allowed): paced by the "
                                      "schedule, not by capacity" if paced else "")))
        T.append((k + ": CPU seconds per round", "%.3f (metric) / %.3f (/proc)" % (r["cpu_round"], r["cpu_round_proc"]),
                  "process_cpu_seconds_total delta / rounds; /proc/PID/stat utime+stime delta / rounds"))
        T.append((k + ": dkim_exporter_shortest_round_seconds / dkim_exporter_interval_seconds",
                  "%g s / %g s" % (r["shortest"], r["interval"]),
                  "dkim_exporter_records %s; max_queries_per_second: 0 (no limit) on the 4 resolvers, hence 0" % fmt(r["records"], 0)))
        T.append((k + ": /probe per s (32 conns)", fmt(r["probe_rps"]),
                  "probe_success=%s, non-2xx %d, socket errors %s, mean latency %s" % (int(r["probe_ok"]), r["probe_non2xx"], r["probe_err"], r["probe_lat"])))
        T.append((k + ": /probe record checks/s (x12)", fmt(r["probe_checks_s"]), ""))
        T.append((k + ": /probe checks/s / blackbox checks/s", "%.2fx" % (r["probe_checks_s"] / bb_rps), "target >= 2x"))
        if r["auth_fail"]:
            T.append((k + ": authoritative: true, interval 1s", "NOT MEASURED", "exporter " + r["auth_fail"] +
                      "; scrapes below are with authoritative off, from a fresh exporter"))
        if r["auth"]:
            T.append((k + ": round duration with authoritative: true", fmt(r["auth_round_s"], 2) + " s",
                      "reload to auth + 2 rounds took %.1f s; VmHWM after it %.1f MiB; auth resolvers: %s" % (
                          r["auth_wall"], r["rss_auth"], ",".join(r["auth_resolvers"]) or "none")))
        sc, ss = r["full"], r["summary"]
        T.append((k + ": /metrics p50 / p99 / max (full detail, authoritative %s)" % ("on" if r["auth"] else "off"),
                  "%.1f / %.1f / %.1f ms" % (sc["p50"], sc["p99"], sc["max"]),
                  "target p99 < %s; %s" % ("100 ms" if n <= 1000 else "1 s", scrape_note(sc))))
        T.append((k + ": /metrics body (full detail)", "%s bytes, %s series" % (fmt(sc["bytes"], 0), fmt(sc["series"], 0)), ""))
        T.append((k + ": /metrics p50 / p99 / max (metrics.detail: summary)",
                  "%.1f / %.1f / %.1f ms" % (ss["p50"], ss["p99"], ss["max"]),
                  "a fresh exporter, first round %.2f s, then interval 1h; %s; p99 %.2fx full's" % (
                      r["summary_first_round"], scrape_note(ss), ss["p99"] / sc["p99"])))
        T.append((k + ": /metrics body (metrics.detail: summary)", "%s bytes, %s series" % (fmt(ss["bytes"], 0), fmt(ss["series"], 0)),
                  "%.1f %% of full's bytes; summary exporter VmHWM at end %.1f MiB (its round, reload to 1h, scrapes)" % (
                      100.0 * ss["bytes"] / sc["bytes"], r["summary_rss"])))
        T.append((k + ": peak RSS (VmHWM) after rounds / at end", "%.1f / %.1f MiB" % (r["rss_rounds"], r["rss_peak"]),
                  ("target < 100 MiB at 10k; " if n == 10000 else "") + "at end: after the reload to interval 1h and the scrapes"))
        for key, what, target in (("live", "full detail", "p99 <= 300 ms and VmHWM <= 64 MiB at 10,000"),
                                  ("summary_live", "metrics.detail: summary", "VmHWM <= 400 MiB at 100,000")):
            lv = r.get(key)
            if lv:
                T.append((k + ": /metrics while rounds run (%s): p50 / p99 / max; 4 at once p50 / max" % what,
                          "%.1f / %.1f / %.1f ms; %.1f / %.1f ms" % (lv["p50"], lv["p99"], lv["max"], lv["conc_p50"], lv["conc_max"]),
                          "target %s; interval 1 s, %d rounds during the %d scrapes a second apart and %d in fives of 4 at once, of %s bytes; "
                          "failed %d" % (target, lv["rounds"], lv["n"], lv["conc_n"], fmt(lv["bytes"], 0), lv["failed"])))
                T.append((k + ": peak RSS (VmHWM) with rounds and scrapes (%s)" % what, "%.1f MiB" % lv["hwm"],
                          "target %s; the process's peak since start: its rounds at interval 1 s and the scrapes above" % target))
        rl = r["reload"]
        T.append((k + ": RSS across a reload: steady / peak / ratio", "%.1f / %.1f MiB / %.3f" % (rl["steady"], rl["peak"], rl["ratio"]),
                  "target <= 1.25; POST /-/reload (the interval 1h config minus its last domain) answered %d in %.2f s "
                  "(records after: %s); VmRSS every 20 ms from 1 s before to 2 s after (%d samples): steady %.1f-%.1f, "
                  "sampled peak %.1f, after %.1f MiB; VmHWM reset before the reload: %.1f MiB" % (
                      rl["status"], rl["secs"], fmt(rl["records"], 0), rl["samples"], rl["steady_range"][0],
                      rl["steady_range"][1], rl["peak_sampled"], rl["after"], rl["hwm"])))
    for a, b in zip(SIZES, SIZES[1:]):
        ra, rb = res[a], res[b]
        x = "x%g records" % (b / a)
        lin = "linear = %gx" % (b / a)
        g = "growth %s -> %s" % (short(a), short(b))
        T.append(("%s (%s): round duration" % (g, x), "%.2fx" % (rb["round_s"] / ra["round_s"]), lin))
        T.append(("%s: CPU per round (/proc)" % g, "%.2fx" % (rb["cpu_round_proc"] / ra["cpu_round_proc"]), lin))
        T.append(("%s: VmHWM after the (authoritative off) rounds" % g, "%.2fx (+%.1f MiB)" % (rb["rss_rounds"] / ra["rss_rounds"], rb["rss_rounds"] - ra["rss_rounds"]), ""))
        T.append(("%s: /metrics p50" % g, "%.2fx" % (rb["full"]["p50"] / ra["full"]["p50"]), lin))
        T.append(("%s: /metrics body" % g, "%.2fx" % (rb["full"]["bytes"] / ra["full"]["bytes"]), ""))
        T.append(("%s: /metrics p50, summary" % g, "%.2fx" % (rb["summary"]["p50"] / ra["summary"]["p50"]), lin))
    if shards:
        sh = shards
        k = "shards N=%d, %d replicas (--shard I/%d, rounds-%d config, interval 1s, at once)" % (sh["n"], SHARDS, SHARDS, sh["n"])
        for rep in sh["reps"]:
            if "fail" in rep:
                T.append(("%s: replica %d/%d" % (k, rep["i"], SHARDS), "FAILED", rep["fail"]))
                continue
            T.append(("%s: replica %d/%d records / domains" % (k, rep["i"], SHARDS),
                      "%s records, %s domains" % (fmt(rep["records"], 0), fmt(len(rep["domains"]), 0)),
                      "dkim_exporter_records; domains of dkim_domain_healthy (%s healthy)" % fmt(rep["healthy"], 0)))
            T.append(("%s: replica %d/%d first round" % (k, rep["i"], SHARDS),
                      "%.2f s (round duration) / %.2f s (start to /-/ready)" % (rep["round_s"], rep["ready_s"]),
                      "dkim_check_round_duration_seconds at the first scrape after /-/ready (%.1f s after start; rounds "
                      "total then %d); shortest round %g s, interval %g s; /metrics %s bytes; VmHWM %.1f MiB" % (
                          rep["scraped_s"], rep["rounds"], rep["shortest"], rep["interval"], fmt(rep["bytes"], 0), rep["rss"])))
        T.append((k + ": every record checked exactly once", "yes" if sh["once"] else "no",
                  "domain sets disjoint: %s (%s domains in all, %s distinct); union is every configured domain: %s "
                  "(%s configured, %d missing, %d extra); records %s of %s" % (
                      "yes" if sh["disjoint"] else "no", fmt(sh["sum"], 0), fmt(sh["union"], 0),
                      "yes" if sh["complete"] else "no", fmt(sh["n"], 0), sh["missing"], sh["extra"],
                      fmt(sh["records"], 0), fmt(3 * sh["n"], 0))))
    for pid, rss in killed.items():
        T.append(("exporter pid %d killed by the bench's RSS guard" % pid, "%.0f MiB" % rss, "limit %.0f MiB" % RSS_LIMIT_MB))
    for a, (mx, tot) in pol.items():
        T.append(("politeness N=1000, limit 50/s: max queries in a 1 s window at %s" % a, str(mx),
                  "%d queries in %d s" % (tot, POLITE_S)))
    if pol:
        T.append(("politeness: exporter's own dkim_dns_queries_total", fmt(pol_exporter, 0), ""))
        T.append(("politeness: dkim_exporter_shortest_round_seconds / dkim_exporter_interval_seconds", "%g s / %g s" % pol_cap[:2],
                  "%s records / 50 queries per second per resolver" % fmt(pol_cap[2], 0)))
    print("| figure | value | note |")
    print("|---|---|---|")
    for f, v, note in T:
        print("| %s | %s | %s |" % (f, v, note))


def short(n):
    return "%dk" % (n // 1000) if n % 1000 == 0 else str(n)


def ready_any(port):
    try:
        return get(port, "/", 2)[0] == 200
    except OSError:
        return False


if __name__ == "__main__":
    try:
        main()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
