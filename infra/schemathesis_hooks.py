"""schemathesis hooks for infra/api-check.sh (SCHEMATHESIS_HOOKS=schemathesis_hooks).

Two rules of the API cannot be written in JSON Schema, so schema-valid
requests the generator draws can still break them; the API is right to
refuse those with 400. Positive cases are brought within the rules before
they are sent, so the positive_data_acceptance check keeps its full
strength for everything else; negative cases are left as drawn.

- Image ids are unique within a job (JSON Schema's uniqueItems compares
  whole items, not one property): repeated ids are replaced by distinct ones.
- A search cursor (`GET /v1/jobs?cursor=`) is only what a page handed out as
  `next_cursor`: a generated one that no page could have handed out is
  dropped (the first page is asked for instead).
"""

import re

import schemathesis

# What `Cursor::encode` writes (shared/src/status_store/search.rs): a score
# (an i64) and a job id, joined by a dot.
HANDED_OUT_CURSOR = re.compile(r"^[+-]?([0-9]+)\.[A-Za-z0-9_-]{1,64}$")
I64_MAX = 2**63 - 1


def could_be_handed_out(cursor):
    match = isinstance(cursor, str) and HANDED_OUT_CURSOR.match(cursor)
    return bool(match) and int(match.group(1)) <= I64_MAX


def is_positive(case):
    meta = case.meta
    return meta is not None and meta.generation.mode.is_positive


@schemathesis.hook
def map_case(context, case):
    if not is_positive(case):
        return case
    operation = (case.operation.method.upper(), case.operation.path)
    if operation == ("POST", "/v1/jobs"):
        body = case.body
        if isinstance(body, dict) and isinstance(body.get("images"), list):
            images = [image for image in body["images"] if isinstance(image, dict)]
            ids = [image.get("id") for image in images]
            if all(isinstance(i, str) for i in ids) and len(set(ids)) != len(ids):
                for index, image in enumerate(images):
                    image["id"] = str(index)
    elif operation == ("GET", "/v1/jobs"):
        query = case.query
        if isinstance(query, dict) and "cursor" in query and not could_be_handed_out(query["cursor"]):
            del query["cursor"]
    return case
