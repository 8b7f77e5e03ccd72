#!/usr/bin/env python3
"""A loopback Amazon SES API v2 server for tests/e2e/run (Python 3, standard library only).

It serves the two calls the exporter's SES discovery makes, with JSON shaped as the AWS API
reference shows it (the Rust fake of tests/integration/support/ses.rs serves the same shapes to `cargo test`):

  ListEmailIdentities  POST /v2/email/list-identities  {"PageSize": n, "NextToken": "..."}
                       (what the AWS SDK sends now), or
                       GET  /v2/email/identities?PageSize=n&NextToken=...  (the older form)
                       -> {"EmailIdentities": [{"IdentityType", "IdentityName", "SendingEnabled",
                           "VerificationStatus"}], "NextToken": "..."}; at most --page-size
                          identities a page whatever PageSize asks, so pagination is exercised
  GetEmailIdentity     GET  /v2/email/identities/{EmailIdentity}
                       -> {"IdentityType", "FeedbackForwardingStatus", "VerifiedForSendingStatus",
                           "DkimAttributes": {...}, "MailFromAttributes", "Policies", "Tags",
                           "VerificationStatus"}, or 404 NotFoundException

Errors are JSON {"message": "..."} with the error code in the x-amzn-ErrorType header, as the
REST-JSON protocol of SES v2 has them. With --access-key-id (and --region), a request that is not
signed with AWS Signature Version 4 for that key, that region and the service `ses` gets 403
UnrecognizedClientException, so a test sees the exporter sign with the credentials it was given.

The identities come from a JSON file, a list of objects in listing order:

  {"name": "example.com",            IdentityName
   "type": "DOMAIN",                 IdentityType: DOMAIN (default) or EMAIL_ADDRESS
   "status": "SUCCESS",              DkimAttributes.Status: PENDING, SUCCESS, FAILED,
                                     TEMPORARY_FAILURE, NOT_STARTED (default SUCCESS)
   "signing_enabled": true,          DkimAttributes.SigningEnabled (default true)
   "origin": "AWS_SES",              DkimAttributes.SigningAttributesOrigin (default AWS_SES)
   "tokens": ["..."],                DkimAttributes.Tokens
   "key_length": "RSA_2048_BIT",     DkimAttributes.CurrentSigningKeyLength (default RSA_2048_BIT)
   "last_key_generation": 1764000000 DkimAttributes.LastKeyGenerationTimestamp, epoch seconds}

Usage: fake-ses.py --listen 127.0.0.1:0 --identities FILE [--page-size 2]
                   [--ready-file FILE] [--access-key-id KEY --region REGION]
It listens on 127.0.0.0/8 only (port 0: any free port), writes HOST:PORT to --ready-file once it
accepts connections, logs one line per request to stderr, and stops on SIGTERM or SIGINT.
"""

import argparse
import ipaddress
import json
import os
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

STATUSES = {"PENDING", "SUCCESS", "FAILED", "TEMPORARY_FAILURE", "NOT_STARTED"}
TYPES = {"DOMAIN", "EMAIL_ADDRESS", "MANAGED_DOMAIN"}


def load_identities(path):
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, list):
        raise ValueError(f"{path}: expected a JSON list of identities")
    identities = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"{path}: identity {i} has no name")
        identity = {
            "name": item["name"],
            "type": item.get("type", "DOMAIN"),
            "status": item.get("status", "SUCCESS"),
            "signing_enabled": bool(item.get("signing_enabled", True)),
            "origin": item.get("origin", "AWS_SES"),
            "tokens": list(item.get("tokens", [])),
            "key_length": item.get("key_length", "RSA_2048_BIT"),
            "last_key_generation": item.get("last_key_generation", 1764000000),
        }
        if identity["type"] not in TYPES:
            raise ValueError(f"{path}: identity {identity['name']}: unknown type {identity['type']}")
        if identity["status"] not in STATUSES:
            raise ValueError(f"{path}: identity {identity['name']}: unknown status {identity['status']}")
        identities.append(identity)
    return identities


def list_item(identity):
    """One entry of ListEmailIdentities' EmailIdentities (IdentityInfo)."""
    return {
        "IdentityType": identity["type"],
        "IdentityName": identity["name"],
        "SendingEnabled": True,
        "VerificationStatus": identity["status"] if identity["type"] != "EMAIL_ADDRESS" else "SUCCESS",
    }


def get_response(identity):
    """GetEmailIdentity's response for a domain identity."""
    dkim = {
        "SigningEnabled": identity["signing_enabled"],
        "Status": identity["status"],
        "Tokens": identity["tokens"],
        "SigningAttributesOrigin": identity["origin"],
        "NextSigningKeyLength": "RSA_2048_BIT",
    }
    if identity["key_length"] is not None:
        dkim["CurrentSigningKeyLength"] = identity["key_length"]
    if identity["last_key_generation"] is not None:
        dkim["LastKeyGenerationTimestamp"] = identity["last_key_generation"]
    return {
        "IdentityType": identity["type"],
        "FeedbackForwardingStatus": True,
        "VerifiedForSendingStatus": identity["status"] == "SUCCESS",
        "DkimAttributes": dkim,
        "MailFromAttributes": {
            "MailFromDomainStatus": "SUCCESS",
            "BehaviorOnMxFailure": "USE_DEFAULT_VALUE",
        },
        "Policies": {},
        "Tags": [],
        "VerificationStatus": identity["status"],
    }


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def version_string(self):
        return "fake-ses"

    # Set on the class by main().
    identities = []
    page_size = 2
    credential = None  # a regex the Authorization header's Credential= must match, or None

    def log_message(self, format, *args):  # noqa: A002 (the base class's name)
        pass  # one line per request is written by respond()

    def read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(self, status, body, error_code=None, note=""):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        if error_code:
            self.send_header("x-amzn-ErrorType", error_code)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        auth = self.headers.get("Authorization", "")
        m = re.search(r"Credential=([^,\s]+)", auth)
        print(
            f"fake-ses: {self.command} {self.path} -> {status}"
            f"{' ' + error_code if error_code else ''}{' ' + note if note else ''}"
            f" credential={m.group(1) if m else '-'}",
            file=sys.stderr,
            flush=True,
        )

    def check_signature(self):
        if self.credential is None:
            return
        auth = self.headers.get("Authorization", "")
        m = re.match(r"AWS4-HMAC-SHA256 Credential=([^,\s]+)", auth)
        if not m or not re.fullmatch(self.credential, m.group(1)) or not self.headers.get("X-Amz-Date"):
            raise ApiError(403, "UnrecognizedClientException", "The security token included in the request is invalid.")

    def page(self, page_size, next_token):
        start = 0
        if next_token:
            m = re.fullmatch(r"page-(\d+)", str(next_token))
            if not m or int(m.group(1)) > len(self.identities):
                raise ApiError(400, "BadRequestException", "Invalid NextToken.")
            start = int(m.group(1))
        if page_size is not None:
            try:
                page_size = int(page_size)
            except (TypeError, ValueError):
                raise ApiError(400, "BadRequestException", "PageSize must be a number.") from None
            if not 0 <= page_size <= 1000:
                raise ApiError(400, "BadRequestException", "PageSize must be between 0 and 1000.")
        size = self.page_size if not page_size else min(page_size, self.page_size)
        end = min(start + size, len(self.identities))
        body = {"EmailIdentities": [list_item(i) for i in self.identities[start:end]]}
        if end < len(self.identities):
            body["NextToken"] = f"page-{end}"
        return body, f"page {start // size + 1 if size else 1} ({end - start} {'identity' if end - start == 1 else 'identities'}{', more' if 'NextToken' in body else ''})"

    def handle_api(self):
        url = urlsplit(self.path)
        body = self.read_body()
        self.check_signature()
        if url.path == "/v2/email/list-identities":
            if self.command != "POST":
                raise ApiError(405, "MethodNotAllowedException", "POST only.")
            try:
                request = json.loads(body or b"{}")
            except ValueError:
                raise ApiError(400, "BadRequestException", "The request body is not JSON.") from None
            if not isinstance(request, dict):
                raise ApiError(400, "BadRequestException", "The request body is not a JSON object.")
            return self.page(request.get("PageSize"), request.get("NextToken"))
        if url.path == "/v2/email/identities":
            if self.command != "GET":
                raise ApiError(405, "MethodNotAllowedException", "GET only.")
            query = parse_qs(url.query)
            return self.page(query.get("PageSize", [None])[0], query.get("NextToken", [None])[0])
        if url.path.startswith("/v2/email/identities/"):
            if self.command != "GET":
                raise ApiError(405, "MethodNotAllowedException", "GET only.")
            name = unquote(url.path[len("/v2/email/identities/"):])
            for identity in self.identities:
                if identity["name"] == name:
                    return get_response(identity), identity["status"]
            raise ApiError(404, "NotFoundException", f"Email identity {name} does not exist.")
        raise ApiError(404, "UnknownOperationException", f"No operation at {self.command} {url.path}.")

    def handle_any(self):
        try:
            body, note = self.handle_api()
            self.respond(200, body, note=note)
        except ApiError as e:
            self.respond(e.status, {"message": e.message}, error_code=e.code)

    do_GET = do_POST = do_PUT = do_DELETE = handle_any


def main():
    parser = argparse.ArgumentParser(description="A loopback Amazon SES API v2 server for the e2e test.")
    parser.add_argument("--listen", required=True, help="HOST:PORT, HOST in 127.0.0.0/8 (port 0: any free port)")
    parser.add_argument("--identities", required=True, help="JSON file: the identities, in listing order")
    parser.add_argument("--page-size", type=int, default=2, help="identities per ListEmailIdentities page")
    parser.add_argument("--ready-file", help="written with HOST:PORT once listening")
    parser.add_argument("--access-key-id", help="require SigV4 requests signed with this access key id")
    parser.add_argument("--region", default="us-east-1", help="the region the signature's scope must name")
    args = parser.parse_args()

    host, _, port = args.listen.rpartition(":")
    try:
        if ipaddress.ip_address(host) not in ipaddress.ip_network("127.0.0.0/8"):
            raise ValueError
        port = int(port)
    except ValueError:
        parser.error(f"--listen {args.listen}: expected HOST:PORT with HOST in 127.0.0.0/8")
    if args.page_size < 1:
        parser.error("--page-size must be at least 1")

    Handler.identities = load_identities(args.identities)
    Handler.page_size = args.page_size
    if args.access_key_id:
        Handler.credential = re.escape(args.access_key_id) + r"/\d{8}/" + re.escape(args.region) + r"/ses/aws4_request"

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bound = f"{server.server_address[0]}:{server.server_address[1]}"
    domains = sum(1 for i in Handler.identities if i["type"] == "DOMAIN")
    print(
        f"fake-ses: listening on http://{bound}: {len(Handler.identities)} identities ({domains} domains), "
        f"{args.page_size} a page{', requests must be signed by ' + args.access_key_id if args.access_key_id else ''}",
        file=sys.stderr,
        flush=True,
    )
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(bound + "\n")
        os.replace(tmp, args.ready_file)
    server.serve_forever()
    server.server_close()
    print("fake-ses: stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
