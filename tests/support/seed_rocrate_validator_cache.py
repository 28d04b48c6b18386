"""Seed rocrate-validator's HTTP cache with the RO-Crate JSON-LD context bundled in the `rocrate` package, so
validation runs offline. Without it the validator logs an "Unexpected error" and still exits 0, which would
make a test that only reads the exit code pass vacuously. (From the project's verified setup recipes.)"""

import io
import os
import sys

import requests
import requests_cache
import rocrate
from requests.structures import CaseInsensitiveDict
from urllib3 import HTTPResponse

URLS = [
    "https://w3id.org/ro/crate/1.1/context",
    "https://www.researchobject.org/ro-crate/1.1/context.jsonld",
    "https://w3id.org/ro/crate/1.2/context",
    "https://w3id.org/ro/crate/1.3/context",
]

with open(os.path.join(os.path.dirname(rocrate.__file__), "data", "ro-crate.jsonld"), "rb") as handle:
    context = handle.read()
session = requests_cache.CachedSession(sys.argv[1], backend="sqlite", expire_after=-1)
for url in URLS:
    headers = {"Content-Type": "application/ld+json"}
    raw = HTTPResponse(body=io.BytesIO(context), headers=headers, status=200, preload_content=False, request_url=url)
    response = requests.Response()
    response.status_code, response._content, response.url, response.raw = 200, context, url, raw
    response.headers, response.encoding, response.reason = CaseInsensitiveDict(headers), "utf-8", "OK"
    response.request = requests.Request("GET", url).prepare()
    session.cache.save_response(response)
print("seeded", len(list(session.cache.responses.keys())))
