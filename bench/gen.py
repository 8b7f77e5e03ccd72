#!/usr/bin/env python3
"""Generate the Knot zones, exporter configs and query files for the benchmark.

usage: gen.py WORKDIR NMAX PUBKEY_B64
Domains d00001.bench ... (5 digits), 3 SES selectors each:
  {token}._domainkey.{domain} CNAME {token}.dkim.amazonses.com.
and a DKIM key TXT at every {token}.dkim.amazonses.com.
"""
import hashlib
import os
import sys

work, nmax, pub = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def domain(i):
    return "d%05d.bench" % i


def tokens(i):
    out = []
    for s in range(3):
        h = hashlib.sha256(("%d/%d" % (i, s)).encode()).hexdigest()
        # SES tokens are 32 lower-case base32-ish characters
        out.append("".join("abcdefghijklmnopqrstuvwxyz234567"[int(h[k:k + 2], 16) % 32] for k in range(0, 64, 2)))
    return out


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
        for t in tokens(i):
            z.write("%s._domainkey.%s CNAME %s.dkim.amazonses.com.\n" % (t, d, t))

with open(os.path.join(work, "dkim.amazonses.com.zone"), "w") as z:
    z.write("$ORIGIN dkim.amazonses.com.\n$TTL 300\n")
    z.write("@ 3600 IN SOA ns1.bench. hostmaster.bench. 1 3600 600 86400 300\n")
    for k in range(1, 5):
        z.write("@ NS ns%d.bench.\n" % k)
    for i in range(1, nmax + 1):
        for t in tokens(i):
            z.write("%s TXT %s\n" % (t, txt))

with open(os.path.join(work, "queries.txt"), "w") as q:
    for i in range(1, nmax + 1):
        for t in tokens(i):
            q.write("%s._domainkey.%s CNAME\n" % (t, domain(i)))


def config(path, n, interval, auth, qps, addrs):
    with open(path, "w") as c:
        c.write("interval: %s\ntimeout: 2s\nauthoritative: %s\nresolvers:\n" % (interval, "true" if auth else "false"))
        for k, a in enumerate(addrs):
            c.write("  - name: r%d\n    address: %s\n    max_queries_per_second: %d\n" % (k + 1, a, qps))
        c.write("domains:\n")
        for i in range(1, n + 1):
            c.write("  - domain: %s\n    provider: ses\n    selectors: [%s]\n" % (domain(i), ", ".join(tokens(i))))


knot = ["127.0.0.%d:53" % (100 + k) for k in range(1, 5)]
proxy = ["127.0.0.%d:5353" % (110 + k) for k in range(1, 5)]
for n in (1000, 10000):
    if n > nmax:
        continue
    config(os.path.join(work, "rounds-%d.yaml" % n), n, "1s", False, 0, knot)
    config(os.path.join(work, "idle-%d.yaml" % n), n, "1h", False, 0, knot)
    config(os.path.join(work, "auth-%d.yaml" % n), n, "1s", True, 0, knot)
    config(os.path.join(work, "authidle-%d.yaml" % n), n, "1h", True, 0, knot)
config(os.path.join(work, "polite-1000.yaml"), min(1000, nmax), "1s", False, 50, proxy)
