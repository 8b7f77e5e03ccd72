#!/usr/bin/env python3
"""Generate the Knot zones, exporter configs and query files for the benchmark.

usage: gen.py WORKDIR NMAX PUBKEY_B64
Domains d00001.bench ... (at least 5 digits), 3 SES selectors each:
  {token}._domainkey.{domain} CNAME {token}.dkim.amazonses.com.
and a DKIM key TXT at every {token}.dkim.amazonses.com.
Configs for every size of BENCH_SIZES (default "1000 10000"), N <= NMAX:
  rounds-N (interval 1s), idle-N (1h),
  rounds-summary-N, idle-summary-N (metrics.detail: summary), auth-N and authidle-N
(authoritative: true) for the sizes of BENCH_AUTH_SIZES (default "1000"), and polite-1000.
"""
import hashlib
import os
import sys

work, nmax, pub = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sizes = sorted({int(s) for s in os.environ.get("BENCH_SIZES", "1000 10000").split()})
auth_sizes = {int(s) for s in os.environ.get("BENCH_AUTH_SIZES", "1000").split()}
ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"


def domain(i):
    return "d%05d.bench" % i


def make_tokens(i):
    out = []
    for s in range(3):
        h = hashlib.sha256(("%d/%d" % (i, s)).encode()).digest()
        # SES tokens are 32 lower-case base32-ish characters (byte k of the digest picks one)
        out.append("".join(ALPHABET[b % 32] for b in h))
    return out


# computed once: 3 x NMAX tokens (900 KB of text at 100,000 domains)
TOKENS = [None] + [make_tokens(i) for i in range(1, nmax + 1)]


def tokens(i):
    return TOKENS[i]


key = "v=DKIM1; k=rsa; p=" + pub
chunks = [key[k:k + 255] for k in range(0, len(key), 255)]
txt = " ".join('"%s"' % c for c in chunks)

soa = "@ 3600 IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300\n"
with open(os.path.join(work, "bench.zone"), "w") as z:
    z.write("$ORIGIN bench.\n$TTL 300\n" + soa)
    for k in range(1, 5):
        z.write("@ NS ns%d\n" % k)
    for k in range(1, 5):
        z.write("ns%d A 127.0.0.%d\n" % (k, 100 + k))
    for i in range(1, nmax + 1):
        d = domain(i)[: -len(".bench")]
        z.write("".join("%s._domainkey.%s CNAME %s.dkim.amazonses.com.\n" % (t, d, t) for t in tokens(i)))

with open(os.path.join(work, "dkim.amazonses.com.zone"), "w") as z:
    z.write("$ORIGIN dkim.amazonses.com.\n$TTL 300\n")
    z.write("@ 3600 IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300\n")
    for k in range(1, 5):
        z.write("@ NS ns%d.bench.\n" % k)
    for i in range(1, nmax + 1):
        z.write("".join("%s TXT %s\n" % (t, txt) for t in tokens(i)))

with open(os.path.join(work, "queries.txt"), "w") as q:
    for i in range(1, nmax + 1):
        q.write("".join("%s._domainkey.%s CNAME\n" % (t, domain(i)) for t in tokens(i)))

with open(os.path.join(work, "domains.txt"), "w") as f:
    f.write("".join(domain(i) + "\n" for i in range(1, nmax + 1)))


def config(path, n, interval, auth, qps, addrs, detail=None):
    with open(path, "w") as c:
        c.write("interval: %s\ntimeout: 2s\nauthoritative: %s\n" % (interval, "true" if auth else "false"))
        if detail:
            c.write("metrics:\n  detail: %s\n" % detail)
        c.write("resolvers:\n")
        for k, a in enumerate(addrs):
            c.write("  - name: r%d\n    address: %s\n    max_queries_per_second: %d\n" % (k + 1, a, qps))
        c.write("domains:\n")
        c.write("".join("  - domain: %s\n    provider: ses\n    selectors: [%s]\n" % (domain(i), ", ".join(tokens(i)))
                        for i in range(1, n + 1)))


knot = ["127.0.0.%d:53" % (100 + k) for k in range(1, 5)]
proxy = ["127.0.0.%d:5353" % (110 + k) for k in range(1, 5)]
for n in sizes:
    if n > nmax:
        continue
    config(os.path.join(work, "rounds-%d.yaml" % n), n, "1s", False, 0, knot)
    config(os.path.join(work, "idle-%d.yaml" % n), n, "1h", False, 0, knot)
    config(os.path.join(work, "rounds-summary-%d.yaml" % n), n, "1s", False, 0, knot, "summary")
    config(os.path.join(work, "idle-summary-%d.yaml" % n), n, "1h", False, 0, knot, "summary")
    if n in auth_sizes:
        config(os.path.join(work, "auth-%d.yaml" % n), n, "1s", True, 0, knot)
        config(os.path.join(work, "authidle-%d.yaml" % n), n, "1h", True, 0, knot)
config(os.path.join(work, "polite-1000.yaml"), min(1000, nmax), "1s", False, 50, proxy)
