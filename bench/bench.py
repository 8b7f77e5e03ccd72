#!/usr/bin/env python3
"""dkim_exporter benchmark orchestrator; run through bench/run, which installs tools and cleans up.

Environment: BENCH_WORK (scratch dir, required), BENCH_SIZES (default "1000 10000"),
BENCH_DURATION (seconds for dnsperf / wrk runs, default 15), BENCH_POLITE_SECONDS (default 20),
BENCH_SCRAPES (default 100),
BENCH_AUTH_SIZES (sizes whose scrape test runs with authoritative: true, default "1000"),
BENCH_RSS_LIMIT_MB (an exporter above this RSS is killed to protect the machine, default 4096), BENCH_EXPORTER (binary, default target/release/dkim_exporter).
Every process started is recorded in $BENCH_WORK/pids for bench/run's trap.
"""
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


def dns_ok(ip, port, name):
    q = struct.pack(">HHHHHH", 4242, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.strip(".").split(".")) + b"\0"
    q += struct.pack(">HH", 6, 1)
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


def metrics(port):
    _, body = get(port, "/metrics")
    m = {}
    for line in body.decode().splitlines():
        if not line or line[0] == "#":
            continue
        name = re.split(r"[{ ]", line, 1)[0]
        try:
            m[name] = m.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
        except ValueError:
            pass
    return m


def wait_until(pred, limit, what, step=0.2):
    end = time.time() + limit
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise SystemExit("timed out waiting for " + what)


def rounds(port):
    return metrics(port).get("dkim_check_rounds_total", 0)


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
        wait_until(lambda: rounds(port) >= r0 + 1 + extra_rounds, 300, "rounds after reload", 0.5)
    else:
        # the new config may already drive the next round (interval 1h: it never ends here), so
        # settle when the round in progress ends or the query rate has dropped to a trickle
        prev = [m0.get("dkim_dns_queries_total", 0), time.time()]

        def settled():
            m = metrics(port)
            if m.get("dkim_check_rounds_total", 0) >= r0 + 1:
                return True
            q, t = m.get("dkim_dns_queries_total", 0), time.time()
            rate = (q - prev[0]) / max(t - prev[1], 1e-3)
            prev[:] = [q, t]
            return time.time() - t0 > 3 and rate < 200

        wait_until(settled, 300, "settle after reload", 1.0)
    return time.time() - t0


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
    knot = start(["knotd", "-c", os.path.join(WORK, "knot.conf")], "knot")
    wait_until(lambda: all(dns_ok(a, 53, "bench.") and dns_ok(a, 53, "dkim.amazonses.com.") for a in KNOT), 120, "knot")
    log("knot up")

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
        with open(os.path.join(WORK, "rounds-%d.yaml" % n)) as s, open(cfg, "w") as d:
            d.write(s.read())
        t0 = time.time()
        p = start([EXE, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % PORT, "--log.level", "warn"],
                  "exporter-%d" % n)
        wait_until(lambda: ready(PORT), 600, "exporter ready", 0.1)
        r["first_round"] = time.time() - t0
        m0, t0, c0 = metrics(PORT), time.time(), cpu_s(p.pid)
        durs, last = [], m0["dkim_check_rounds_total"]
        while last < m0["dkim_check_rounds_total"] + 3 and time.time() - t0 < 300:
            time.sleep(0.1)
            m = metrics(PORT)
            if m["dkim_check_rounds_total"] > last:
                last = m["dkim_check_rounds_total"]
                durs.append(m["dkim_check_round_duration_seconds"])
        m1, t1, c1 = metrics(PORT), time.time(), cpu_s(p.pid)
        nr = m1["dkim_check_rounds_total"] - m0["dkim_check_rounds_total"]
        r["rounds"] = nr
        r["round_s"] = statistics.median(durs)
        r["ndurs"] = len(durs)
        r["wall_per_round"] = (t1 - t0) / nr
        r["checks_s"] = n * 12 / r["round_s"]
        r["qps"] = (m1["dkim_dns_queries_total"] - m0["dkim_dns_queries_total"]) / (t1 - t0)
        r["cpu_round"] = (m1["process_cpu_seconds_total"] - m0["process_cpu_seconds_total"]) / nr
        r["cpu_round_proc"] = (c1 - c0) / nr
        r["errors"] = m1.get("dkim_lookup_errors_total", 0)
        r["correct"] = m1.get("dkim_record_correct", 0)
        r["rss_rounds"] = vmhwm(p.pid)
        log(n, "rounds", r)

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
            with open(os.path.join(WORK, "rounds-%d.yaml" % n)) as s_, open(cfg, "w") as d_:
                d_.write(s_.read())
            p = start([EXE, "--config.file", cfg, "--web.listen-address", "127.0.0.1:%d" % PORT, "--log.level", "warn"],
                      "exporter-%d-b" % n)
            wait_until(lambda: ready(PORT), 600, "exporter ready", 0.1)
            reload_and_settle(p, PORT, os.path.join(WORK, "idle-%d.yaml" % n), 0)
        elif not r["auth"]:
            reload_and_settle(p, PORT, os.path.join(WORK, "idle-%d.yaml" % n), 0)
        lat, size = [], 0
        for _ in range(SCRAPES):
            s0 = time.perf_counter()
            st, body = get(PORT, "/metrics")
            lat.append(time.perf_counter() - s0)
            size = len(body)
        text = body.decode()
        lat.sort()
        r["scrape_p50"] = statistics.median(lat) * 1000
        r["scrape_p99"] = lat[min(len(lat) - 1, int(round(0.99 * len(lat))) - 1)] * 1000
        r["scrape_max"] = lat[-1] * 1000
        r["body"] = size
        r["series"] = sum(1 for l in text.splitlines() if l and l[0] != "#")
        r["auth_resolvers"] = sorted(set(re.findall(r'resolver="(auth:[^"]+)"', text)))
        r["rss_peak"] = vmhwm(p.pid)
        stop(p)
        log(n, "scrape", r["scrape_p50"], r["scrape_p99"], r["body"], r["auth_resolvers"])

        # /probe throughput: a second exporter, same records, interval 1h (its first round is
        # spread over an hour, so it is nearly idle), authoritative off: 12 checks per probe
        p2 = start([EXE, "--config.file", os.path.join(WORK, "idle-%d.yaml" % n), "--web.listen-address",
                    "127.0.0.1:%d" % (PORT + 1), "--log.level", "warn"], "exporter-probe-%d" % n)
        wait_until(lambda: ready_any(PORT + 1), 60, "probe exporter up")
        st, body = get(PORT + 1, "/probe?target=d%05d.bench" % n)
        r["probe_ok"] = st == 200 and b"\ndkim_probe_success 1" in body
        r["probe_rps"], r["probe_non2xx"], r["probe_err"], r["probe_lat"] = wrk(
            "http://127.0.0.1:%d" % (PORT + 1), os.path.join(HERE, "probe.lua"), {"BENCH_N": str(n), "BENCH_TAG": "probe-%d" % n})
        r["probe_checks_s"] = r["probe_rps"] * 12
        stop(p2)
        log(n, "probe", r["probe_rps"], r["probe_ok"])

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
    stop(knot)
    facts["load_end"] = open("/proc/loadavg").read().split()[:3]

    # --- table ---
    T = []
    T.append(("machine", "%s CPUs, %s, %s RAM, kernel %s" % (facts["nproc"], facts["cpu"], facts["mem"], facts["kernel"]), ""))
    T.append(("load average (1/5/15 min) at start / end", "%s / %s" % (" ".join(facts["load_start"]), " ".join(facts["load_end"])), "others may be using the CPUs"))
    T.append(("dnsperf qps (1 address, -c 4, %ds)" % DUR, fmt(dnsperf_qps), "queries lost: %s" % lost))
    T.append(("blackbox_exporter probes/s = record checks/s (32 conns, %ds)" % DUR, fmt(bb_rps),
              "probe_success=%s, non-2xx %d, socket errors %s, mean latency %s" % (int(bb_ok), bb_non2xx, bb_err, bb_lat)))
    for n in SIZES:
        r = res[n]
        k = "N=%d (%d checks/round)" % (n, n * 12)
        T.append((k + ": first round (start to /-/ready)", fmt(r["first_round"], 2) + " s", ""))
        T.append((k + ": round duration (median of %d)" % r["ndurs"], fmt(r["round_s"], 2) + " s",
                  "wall per round %.2f s over %d rounds" % (r["wall_per_round"], r["rounds"])))
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
        T.append((k + ": /metrics p50 / p99 / max (%d sequential, authoritative %s)" % (SCRAPES, "on" if r["auth"] else "off"),
                  "%.1f / %.1f / %.1f ms" % (r["scrape_p50"], r["scrape_p99"], r["scrape_max"]),
                  "target p99 < %s" % ("100 ms" if n <= 1000 else "1 s")))
        T.append((k + ": /metrics body", "%s bytes, %s series" % (fmt(r["body"], 0), fmt(r["series"], 0)), ""))
        T.append((k + ": peak RSS (VmHWM) after rounds / at end", "%.1f / %.1f MiB" % (r["rss_rounds"], r["rss_peak"]),
                  "target < 100 MiB at 10k"))
    if 1000 in res and 10000 in res:
        a, b = res[1000], res[10000]
        T.append(("growth 1k -> 10k (x10 records): round duration", "%.2fx" % (b["round_s"] / a["round_s"]), "linear = 10x"))
        T.append(("growth 1k -> 10k: CPU per round (/proc)", "%.2fx" % (b["cpu_round_proc"] / a["cpu_round_proc"]), "linear = 10x"))
        T.append(("growth 1k -> 10k: VmHWM after the (authoritative off) rounds", "%.2fx (+%.1f MiB)" % (b["rss_rounds"] / a["rss_rounds"], b["rss_rounds"] - a["rss_rounds"]), ""))
        T.append(("growth 1k -> 10k: /metrics p50", "%.2fx" % (b["scrape_p50"] / a["scrape_p50"]), "linear = 10x"))
        T.append(("growth 1k -> 10k: /metrics body", "%.2fx" % (b["body"] / a["body"]), ""))
    for pid, rss in killed.items():
        T.append(("exporter pid %d killed by the bench's RSS guard" % pid, "%.0f MiB" % rss, "limit %.0f MiB" % RSS_LIMIT_MB))
    for a, (mx, tot) in pol.items():
        T.append(("politeness N=1000, limit 50/s: max queries in a 1 s window at %s" % a, str(mx),
                  "%d queries in %d s" % (tot, POLITE_S)))
    if pol:
        T.append(("politeness: exporter's own dkim_dns_queries_total", fmt(pol_exporter, 0), ""))
    print("| figure | value | note |")
    print("|---|---|---|")
    for f, v, note in T:
        print("| %s | %s | %s |" % (f, v, note))


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
