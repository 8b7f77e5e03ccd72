#!/usr/bin/env python3
"""DMARC aggregate report messages for tests/e2e/run, shaped as receivers send them.

Usage: dmarc-reports.py MAILDIR FILES_DIR AUTHSERV_ID SPEC

SPEC is JSON: {"now": UNIX, "failing": [DOMAIN, SELECTOR], "passing": [[DOMAIN, SELECTOR], ...],
"rogue": [DOMAIN, SELECTOR], "healthy": [DOMAIN, SELECTOR]}. Writes into MAILDIR/new (Dovecot's
INBOX) these messages, each dated a day ago:

- google.com, a gzip attachment (RFC 7489): the failing selector fails 300 messages (SPF fails
  too: mail changed in transit), the passing selectors pass 100 each, the rogue selector (no
  config lists it) passes 60, and the healthy domain's selector passes 200;
- Microsoft, a zip attachment (application/x-zip-compressed, RFC 9990 with its namespace): the
  failing selector fails 80;
- Yahoo, plain XML (text/xml, quoted-printable): the healthy domain passes 50;
- a forged report (dmarc@evil.test, no passing Authentication-Results by AUTHSERV_ID) claiming
  1,000 failures of the healthy domain's selector;
- a message that is not a report.

Every message but the forged one and the junk carries an `Authentication-Results: AUTHSERV_ID;
dkim=pass header.d=<reporter>` header, as the receiving server adds it. The Google and Microsoft
messages are also written to FILES_DIR as .eml files, for `check --dmarc-reports`.
"""

import base64
import gzip
import io
import json
import os
import quopri
import sys
import zipfile

DAY = 86400


def report(org, report_id, end, domain, rows, rfc9990=False):
    """One aggregate report's XML; rows are (count, dkim, spf, [(d, s, result)])."""
    ns = ' xmlns="urn:ietf:params:xml:ns:dmarc-2.0"' if rfc9990 else ""
    version = "<version>1.0</version>" if rfc9990 else ""
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<feedback{ns}>{version}<report_metadata><org_name>{org}</org_name>"
        f"<email>noreply-dmarc@{org}</email><report_id>{report_id}</report_id>"
        f"<date_range><begin>{end - DAY}</begin><end>{end}</end></date_range></report_metadata>"
        f"<policy_published><domain>{domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p>"
        "<pct>100</pct></policy_published>",
    ]
    for count, dkim, spf, from_domain, signatures in rows:
        sigs = "".join(
            f"<dkim><domain>{d}</domain><selector>{s}</selector><result>{r}</result></dkim>"
            for d, s, r in signatures
        )
        out.append(
            f"<record><row><source_ip>192.0.2.25</source_ip><count>{count}</count>"
            f"<policy_evaluated><disposition>none</disposition><dkim>{dkim}</dkim><spf>{spf}</spf>"
            f"</policy_evaluated></row><identifiers><header_from>{from_domain}</header_from>"
            f"</identifiers><auth_results>{sigs}<spf><domain>{from_domain}</domain>"
            f"<result>{spf}</result></spf></auth_results></record>"
        )
    out.append("</feedback>")
    return "\n".join(out).encode()


def message(headers, sender, name, content_type, encoding, payload):
    """A report message with one attachment."""
    if encoding == "base64":
        body = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    else:
        body = quopri.encodestring(payload).decode().replace("\n", "\r\n")
    return (
        f"{headers}From: DMARC Aggregate Report <{sender}>\r\n"
        "To: dmarc@e2e\r\n"
        f"Subject: Report Domain: {name}\r\n"
        "Date: Mon, 7 Dec 2026 06:00:00 +0000\r\n"
        f"Message-ID: <{name}@e2e>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b1"\r\n'
        "\r\n--b1\r\nContent-Type: text/plain\r\n\r\nThis is an aggregate report.\r\n"
        f'--b1\r\nContent-Type: {content_type}; name="{name}"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n"
        f'Content-Disposition: attachment; filename="{name}"\r\n\r\n'
        f"{body}\r\n--b1--\r\n"
    ).encode()


def main():
    maildir, files_dir, authserv_id, spec = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    end = spec["now"] - 3600
    failing_domain, failing = spec["failing"]
    rogue_domain, rogue = spec["rogue"]
    healthy_domain, healthy = spec["healthy"]
    vouched = lambda org: f"Authentication-Results: {authserv_id}; dkim=pass header.d={org} header.s=s2048\r\n"

    google_rows = [(300, "fail", "fail", failing_domain, [(failing_domain, failing, "fail")])]
    for domain, selector in spec["passing"]:
        google_rows.append((100, "pass", "pass", domain, [(domain, selector, "pass")]))
    google_rows.append((60, "pass", "pass", rogue_domain, [(rogue_domain, rogue, "pass")]))
    google_rows.append((200, "pass", "pass", healthy_domain, [(healthy_domain, healthy, "pass")]))
    google = gzip.compress(report("google.com", "e2e-g1", end, failing_domain, google_rows))

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            f"microsoft.com!{failing_domain}!{end - DAY}!{end}.xml",
            report("Microsoft", "e2e-m1", end, failing_domain,
                   [(80, "fail", "fail", failing_domain, [(failing_domain, failing, "fail")])], rfc9990=True),
        )
    microsoft = buffer.getvalue()
    yahoo = report("Yahoo", "e2e-y1", end, healthy_domain,
                   [(50, "pass", "pass", healthy_domain, [(healthy_domain, healthy, "pass")])])
    forged = gzip.compress(report("evil.test", "e2e-f1", end, healthy_domain,
                                  [(1000, "fail", "pass", healthy_domain, [(healthy_domain, healthy, "fail")])]))

    messages = {
        "google": message(vouched("google.com"), "noreply-dmarc-support@google.com",
                          f"google.com!{failing_domain}!{end - DAY}!{end}.xml.gz", "application/gzip", "base64", google),
        "microsoft": message(vouched("microsoft.com"), "dmarcreport@microsoft.com",
                             f"microsoft.com!{failing_domain}!{end}.zip", "application/x-zip-compressed", "base64", microsoft),
        "yahoo": message(vouched("yahoo.com"), "dmarchelp@yahoo.com", f"yahoo.com!{healthy_domain}.xml",
                         "text/xml", "quoted-printable", yahoo),
        "forged": message(f"Authentication-Results: {authserv_id}; dkim=none\r\n", "dmarc@evil.test",
                          "evil.xml.gz", "application/gzip", "base64", forged),
        "junk": b"From: someone@e2e\r\nTo: dmarc@e2e\r\nSubject: hello\r\n\r\nNot a report.\r\n",
    }
    yesterday = spec["now"] - DAY
    os.makedirs(os.path.join(maildir, "new"), exist_ok=True)
    for sub in ("cur", "tmp"):
        os.makedirs(os.path.join(maildir, sub), exist_ok=True)
    for n, (name, raw) in enumerate(messages.items()):
        path = os.path.join(maildir, "new", f"{yesterday}.M{n}P1.e2e")
        with open(path, "wb") as f:
            f.write(raw)
        os.utime(path, (yesterday, yesterday))
    os.makedirs(files_dir, exist_ok=True)
    for name in ("google", "microsoft"):
        with open(os.path.join(files_dir, f"{name}.eml"), "wb") as f:
            f.write(messages[name])


if __name__ == "__main__":
    main()
