"""schemathesis hooks for infra/api-check.sh (SCHEMATHESIS_HOOKS=schemathesis_hooks).

One rule of the job spec cannot be written in JSON Schema: image ids are
unique within a job (JSON Schema's uniqueItems compares whole items, not one
property). The API is right to refuse duplicates (400 naming each one), so
schema-valid specs the generator draws with repeated ids are given distinct
ids before they are sent: positive cases stay valid and the
positive_data_acceptance check keeps its full strength for everything else.
Negative cases are left as drawn.
"""

import schemathesis


@schemathesis.hook
def map_case(context, case):
    if case.operation.method.upper() != "POST" or case.operation.path != "/v1/jobs":
        return case
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    body = case.body
    if isinstance(body, dict) and isinstance(body.get("images"), list):
        images = [image for image in body["images"] if isinstance(image, dict)]
        ids = [image.get("id") for image in images]
        if all(isinstance(i, str) for i in ids) and len(set(ids)) != len(ids):
            for index, image in enumerate(images):
                image["id"] = str(index)
    return case
