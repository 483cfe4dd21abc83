#!/usr/bin/env python3
"""The Terraform module as Terraform evaluates it, for the checks that read values.

    tf_state.py extract TEST_OUTPUT.jsonl STATE.json

`terraform test -json -verbose` (infra/check/terraform/evaluate.tftest.hcl: a mock AWS
provider, the variables' defaults) prints one JSON message a line; the `test_state` message
carries the state after the run's apply. `extract` writes that state (without the provider
schemas, which are most of its size) to STATE.json, or fails with Terraform's diagnostics.
`resources(state)` gives every resource instance by address, for lanes_check.py and
retention_check.py.
"""

import json
import sys


def extract(test_output, state_path):
    state = None
    diagnostics = []
    summary = ""
    with open(test_output, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            message = json.loads(line)
            kind = message.get("type")
            if kind == "test_state":
                state = message["test_state"]
            elif kind == "diagnostic":
                diagnostics.append(message.get("@message", ""))
            elif kind == "test_summary":
                summary = message.get("@message", "")
    if state is None or diagnostics:
        print(f"terraform test did not evaluate the module: {summary or 'no state printed'}")
        for d in diagnostics:
            print(f"  {d}")
        return 1
    state.pop("provider_schemas", None)
    with open(state_path, "w", encoding="utf-8") as f:
        json.dump(state, f)
    count = len(resources(state))
    print(f"terraform test: module evaluated with a mock provider ({count} resource instances)")
    return 0


def resources(state):
    """Every resource and data instance of the root module, by address."""
    out = {}
    for r in (state.get("root_module") or {}).get("resources") or []:
        out[r["address"]] = r
    return out


def of_type(state, type_name):
    return [r for r in resources(state).values() if r["type"] == type_name]


def main():
    if len(sys.argv) != 4 or sys.argv[1] != "extract":
        print(__doc__.strip().splitlines()[2].strip())
        return 2
    return extract(sys.argv[2], sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
