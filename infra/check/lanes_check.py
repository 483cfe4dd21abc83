#!/usr/bin/env python3
"""Autoscaling sees every lane: proof that the deploy kit counts each fair-share lane once.

    lanes_check.py [--rabbitmq RENDERED.yaml] [--sqs RENDERED.yaml] [--terraform-state STATE.json]

Fair share (issue 22) spreads the jobs over ZIPFLEET_FAIR_LANES queues: lane 0 is the jobs
queue (ZIPFLEET_JOBS_QUEUE), lane n >= 1 is named after it (RabbitMQ `JOBS.laneN`, SQS
`JOBS-laneN`). A lane the autoscaler does not count is a lane whose jobs can wait with no
worker started for them, so:

- RabbitMQ overlay (kubectl kustomize output): the lane names come from the rendered
  ConfigMap and Deployments (ZIPFLEET_JOBS_QUEUE, ZIPFLEET_FAIR_LANES, as the API and the
  workers will see them). The ScaledObject's rabbitmq trigger regex (`useRegex: "true"`,
  `operation: sum`) must match every lane and nothing else: not the dead-letter or completed
  queue, not lane N (one past the last), not a name that merely contains a lane. The regex is
  applied as RabbitMQ's management API applies it: a search, not anchored.
- SQS overlay: one aws-sqs-queue trigger per lane, each named, and a scalingModifiers
  formula that is a plain sum naming every trigger exactly once.
- Terraform (the state of infra/check/terraform/evaluate.tftest.hcl's run, see tf_state.py):
  the lane queues of the task definitions' ZIPFLEET_JOBS_QUEUE and ZIPFLEET_FAIR_LANES exist,
  each like lane 0 (visibility, retention, long polling, encryption, redrive into the one
  DLQ with the same delivery limit) and allowed to redrive into the DLQ; the workers'
  backlog-per-task metric math divides a sum of ApproximateNumberOfMessagesVisible naming
  every lane queue exactly once by the running tasks, and the "start the first task" alarm
  uses such a sum; the API may send to and read every lane, the workers may receive,
  delete, extend, read every lane and send to the DLQ; both task definitions carry
  ZIPFLEET_FAIR_LANES, ZIPFLEET_MAX_QUEUED_PER_TENANT and ZIPFLEET_ERASURE_TOMBSTONE_TTL.

Exit status 1 with one line per problem.
"""

import argparse
import collections
import json
import re
import sys

import yaml

import tf_state

DEFAULT_LANES = 8
DEFAULTS = {
    "rabbitmq": {"ZIPFLEET_JOBS_QUEUE": "zipfleet.jobs", "ZIPFLEET_COMPLETED_QUEUE": "zipfleet.completed",
                 "ZIPFLEET_DEAD_LETTER_QUEUE": "zipfleet.jobs.dlq"},
    "sqs": {"ZIPFLEET_JOBS_QUEUE": "zipfleet-jobs", "ZIPFLEET_COMPLETED_QUEUE": "zipfleet-completed",
            "ZIPFLEET_DEAD_LETTER_QUEUE": "zipfleet-jobs-dlq"},
}
SEPARATOR = {"rabbitmq": ".", "sqs": "-"}


def lane_names(broker, jobs, lanes):
    return [jobs] + [f"{jobs}{SEPARATOR[broker]}lane{n}" for n in range(1, lanes)]


# --- sums in KEDA formulas and CloudWatch metric math ------------------------------------

TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[+\-*/(),\[\]])|(?P<other>\S))")


class NotASum(ValueError):
    pass


def tokens(expression):
    out = []
    for m in TOKEN.finditer(expression):
        if m.group("other"):
            raise NotASum(f"unexpected {m.group('other')!r}")
        out.append(m.group("name") or m.group("op"))
    return out


def sum_terms(expression, resolve):
    """The names a plain sum adds, with how often: `a + b + (c)` or CloudWatch's
    `SUM([a, b])`; `resolve(name)` turns a name into its own Counter (a metric is itself, an
    expression is its terms). Anything else (a minus, a product, a constant, another
    function) is not a plain sum: raises NotASum."""
    toks = tokens(expression)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take(expected=None):
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise NotASum(f"expected {expected or 'a term'}, found {tok or 'the end'}")
        pos += 1
        return tok

    def total():
        terms = term()
        while peek() == "+":
            take("+")
            terms += term()
        return terms

    def term():
        tok = take()
        if tok == "(":
            inner = total()
            take(")")
            return inner
        if tok == "SUM" and peek() == "(":
            take("(")
            take("[")
            terms = total()
            while peek() == ",":
                take(",")
                terms += total()
            take("]")
            take(")")
            return terms
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", tok):
            return resolve(tok)
        raise NotASum(f"unexpected {tok!r}")

    result = total()
    if peek() is not None:
        raise NotASum(f"unexpected {peek()!r} (only + adds lanes)")
    return result


def exactly_once(where, counted, expected, errors, what="lane"):
    """`counted`: Counter of lane names; every expected lane once, nothing else."""
    for lane in expected:
        if counted[lane] != 1:
            errors.append(f"{where}: {what} {lane} is counted {counted[lane]} times, not once")
    for name in sorted(set(counted) - set(expected)):
        errors.append(f"{where}: counts {name}, which is not a lane of the jobs queue")


# --- Kubernetes --------------------------------------------------------------------------

def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def effective_settings(docs, broker, errors, where):
    """ZIPFLEET_* as the API and worker containers see them: literal env over envFrom
    ConfigMaps over the contract's defaults. Both must see the same queue settings."""
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    seen = {}
    for dep in (d for d in docs if d.get("kind") == "Deployment"):
        name = dep["metadata"]["name"]
        for c in dep["spec"]["template"]["spec"].get("containers") or []:
            env = dict(DEFAULTS[broker])
            for ref in c.get("envFrom") or []:
                cm = (ref.get("configMapRef") or {}).get("name")
                env.update(configmaps.get(cm, {}))
            for e in c.get("env") or []:
                if "value" in e:
                    env[e["name"]] = str(e["value"])
            seen[name] = env
    if not seen:
        errors.append(f"{where}: no Deployment found")
        return None
    keys = ["ZIPFLEET_JOBS_QUEUE", "ZIPFLEET_FAIR_LANES", "ZIPFLEET_DEAD_LETTER_QUEUE",
            "ZIPFLEET_COMPLETED_QUEUE"]
    views = {name: tuple(env.get(k) for k in keys) for name, env in seen.items()}
    if len(set(views.values())) > 1:
        errors.append(f"{where}: the Deployments see different queue settings: {views}")
    env = next(iter(seen.values()))
    try:
        lanes = int(env.get("ZIPFLEET_FAIR_LANES", DEFAULT_LANES))
    except ValueError:
        errors.append(f"{where}: ZIPFLEET_FAIR_LANES is not a number: {env.get('ZIPFLEET_FAIR_LANES')!r}")
        return None
    return {"lanes": lanes, "jobs": env["ZIPFLEET_JOBS_QUEUE"],
            "dlq": env["ZIPFLEET_DEAD_LETTER_QUEUE"], "completed": env["ZIPFLEET_COMPLETED_QUEUE"]}


def worker_scaled_object(docs, errors, where):
    scaled = [d for d in docs if d.get("kind") == "ScaledObject"]
    if len(scaled) != 1:
        errors.append(f"{where}: expected one ScaledObject, found {len(scaled)}")
        return None
    return scaled[0]


def counted_queues(so, broker, candidates, errors, where):
    """Counter of the queue names the ScaledObject's metric adds up."""
    spec = so.get("spec") or {}
    triggers = spec.get("triggers") or []
    per_trigger = []
    for i, t in enumerate(triggers):
        md = t.get("metadata") or {}
        tloc = f"{where}: trigger {t.get('name') or i}"
        if t.get("type") == "rabbitmq" and broker == "rabbitmq":
            if md.get("useRegex") == "true":
                # KEDA's default operation is sum; max or avg would count one lane's worth.
                if md.get("operation", "sum") != "sum":
                    errors.append(f"{tloc}: a queueName regex must add its queues up "
                                  f"(operation: sum, not {md.get('operation')})")
                try:
                    regex = re.compile(md.get("queueName", ""))
                except re.error as e:
                    errors.append(f"{tloc}: queueName is not a regex: {e}")
                    regex = None
                matched = [c for c in candidates if regex and regex.search(c)]
                per_trigger.append(collections.Counter(matched))
            else:
                per_trigger.append(collections.Counter([md.get("queueName")]))
        elif t.get("type") == "aws-sqs-queue" and broker == "sqs":
            url = md.get("queueURL")
            if not url:
                errors.append(f"{tloc}: needs queueURL (queueURLFromEnv cannot be checked here)")
                per_trigger.append(collections.Counter())
                continue
            per_trigger.append(collections.Counter([url.rstrip("/").rsplit("/", 1)[-1]]))
        else:
            errors.append(f"{tloc}: a {t.get('type')} trigger does not count {broker} lanes")
            per_trigger.append(collections.Counter())
    formula = ((spec.get("advanced") or {}).get("scalingModifiers") or {}).get("formula")
    if formula:
        names = [t.get("name") for t in triggers]
        by_name = dict(zip(names, per_trigger))

        def resolve(name):
            if name not in by_name:
                raise NotASum(f"{name!r} names no trigger")
            return collections.Counter([name])

        try:
            used = sum_terms(formula, resolve)
        except NotASum as e:
            errors.append(f"{where}: scalingModifiers.formula {formula!r} is not a plain sum of "
                          f"the triggers: {e}")
            return None
        for name in names:
            if used[name] != 1:
                errors.append(f"{where}: scalingModifiers.formula {formula!r} adds trigger {name} "
                              f"{used[name]} times, not once")
        total = collections.Counter()
        for name, times in used.items():
            for _ in range(times):
                total += by_name.get(name, collections.Counter())
        return total
    if len(triggers) > 1:
        errors.append(f"{where}: {len(triggers)} triggers and no scalingModifiers.formula: the HPA "
                      "scales on the largest, not on their sum")
    return sum(per_trigger, collections.Counter())


def check_overlay(path, broker, errors):
    where = f"{broker} overlay ({path})"
    docs = load_docs(path)
    settings = effective_settings(docs, broker, errors, where)
    so = worker_scaled_object(docs, errors, where)
    if settings is None or so is None:
        return
    lanes = lane_names(broker, settings["jobs"], settings["lanes"])
    sep = SEPARATOR[broker]
    jobs = settings["jobs"]
    # What must not be counted: the other queues, the next lane numbers, look-alikes.
    others = [settings["dlq"], settings["completed"], f"{jobs}{sep}lane0",
              f"{jobs}{sep}lane{settings['lanes']}", f"{jobs}{sep}lane{settings['lanes'] + 1}",
              f"{jobs}{sep}lane10", f"{jobs}{sep}lane01", f"{jobs}{sep}lane", f"{jobs}{sep}dlq",
              f"{jobs}{'-' if sep == '.' else '.'}lane1"]
    others += [f"x{lane}" for lane in lanes] + [f"{lane}x" for lane in lanes]
    others += [f"{lane}{sep}dlq" for lane in lanes]
    candidates = lanes + [o for o in dict.fromkeys(others) if o not in lanes]
    counted = counted_queues(so, broker, candidates, errors, where)
    if counted is None:
        return
    exactly_once(where, counted, lanes, errors)
    if not errors:
        print(f"lanes_check: {where}: the ScaledObject counts each of the {len(lanes)} lanes "
              f"({lanes[0]} ... {lanes[-1]}) once and none of {len(candidates) - len(lanes)} "
              "other names (DLQ, completed, look-alikes)")


# --- Terraform ---------------------------------------------------------------------------

def container_env(task_definition):
    definitions = json.loads(task_definition["values"]["container_definitions"])
    return {e["name"]: e["value"] for e in definitions[0].get("environment") or []}


def allowed(document, action):
    """Resources an IAM policy document's Allow statements grant `action` on."""
    out = set()
    for st in document["values"].get("statement") or []:
        if (st.get("effect") or "Allow") != "Allow":
            continue
        actions = st.get("actions") or []
        if action in actions or "sqs:*" in actions or "*" in actions:
            out.update(st.get("resources") or [])
    return out


def check_terraform(path, errors):
    where = "terraform"
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    res = tf_state.resources(state)
    queues = {r["values"]["name"]: r["values"] for r in tf_state.of_type(state, "aws_sqs_queue")}
    by_url = {q["url"]: q for q in queues.values()}
    by_arn = {q["arn"]: q["name"] for q in queues.values()}
    tasks = {a: r for a, r in res.items() if r["type"] == "aws_ecs_task_definition"}
    envs = {a: container_env(r) for a, r in tasks.items()}
    if not envs:
        errors.append(f"{where}: no ECS task definition")
        return
    for address, env in envs.items():
        for key in ("ZIPFLEET_FAIR_LANES", "ZIPFLEET_MAX_QUEUED_PER_TENANT", "ZIPFLEET_ERASURE_TOMBSTONE_TTL"):
            if not env.get(key):
                errors.append(f"{where}: {address} does not set {key}")
    views = {a: (e.get("ZIPFLEET_JOBS_QUEUE"), e.get("ZIPFLEET_FAIR_LANES")) for a, e in envs.items()}
    if len(set(views.values())) > 1:
        errors.append(f"{where}: the task definitions see different lanes: {views}")
    env = next(iter(envs.values()))
    jobs_queue = by_url.get(env.get("ZIPFLEET_JOBS_QUEUE"))
    dlq = by_url.get(env.get("ZIPFLEET_DEAD_LETTER_QUEUE"))
    completed = by_url.get(env.get("ZIPFLEET_COMPLETED_QUEUE"))
    if not (jobs_queue and dlq and completed):
        errors.append(f"{where}: ZIPFLEET_JOBS_QUEUE, ZIPFLEET_DEAD_LETTER_QUEUE and "
                      "ZIPFLEET_COMPLETED_QUEUE must be URLs of queues of this module")
        return
    try:
        lanes_n = int(env.get("ZIPFLEET_FAIR_LANES", DEFAULT_LANES))
    except ValueError:
        errors.append(f"{where}: ZIPFLEET_FAIR_LANES is not a number")
        return
    lanes = lane_names("sqs", jobs_queue["name"], lanes_n)

    # The queues: every lane exists and is lane 0's twin.
    same = ["visibility_timeout_seconds", "message_retention_seconds", "receive_wait_time_seconds",
            "sqs_managed_sse_enabled", "kms_master_key_id", "delay_seconds", "fifo_queue"]
    lane0 = jobs_queue
    try:
        redrive0 = json.loads(lane0.get("redrive_policy") or "{}")
    except ValueError:
        redrive0 = {}
    if redrive0.get("deadLetterTargetArn") != dlq["arn"]:
        errors.append(f"{where}: {lane0['name']} does not dead-letter into {dlq['name']}")
    if str(redrive0.get("maxReceiveCount")) != str(env.get("ZIPFLEET_MAX_DELIVERIES", redrive0.get("maxReceiveCount"))):
        errors.append(f"{where}: {lane0['name']}'s maxReceiveCount differs from ZIPFLEET_MAX_DELIVERIES")
    for name in lanes:
        q = queues.get(name)
        if q is None:
            errors.append(f"{where}: no SQS queue {name} (lane {lanes.index(name)} of "
                          f"ZIPFLEET_FAIR_LANES={lanes_n})")
            continue
        for attr in same:
            if q.get(attr) != lane0.get(attr):
                errors.append(f"{where}: {name}.{attr} = {q.get(attr)!r}, lane 0 has {lane0.get(attr)!r}")
        try:
            redrive = json.loads(q.get("redrive_policy") or "{}")
        except ValueError:
            redrive = {}
        if redrive != redrive0:
            errors.append(f"{where}: {name}'s redrive policy {redrive} differs from lane 0's {redrive0}")
    prefix = f"{jobs_queue['name']}-lane"
    for name in sorted(queues):
        if name.startswith(prefix) and name not in lanes:
            errors.append(f"{where}: queue {name} looks like a lane but ZIPFLEET_FAIR_LANES={lanes_n} "
                          "leaves it out: no worker would take its jobs")
    lane_arns = {queues[n]["arn"] for n in lanes if n in queues}
    allow = [r for r in tf_state.of_type(state, "aws_sqs_queue_redrive_allow_policy")
             if r["values"]["queue_url"] == dlq["url"]]
    if allow:
        sources = set(json.loads(allow[0]["values"]["redrive_allow_policy"]).get("sourceQueueArns") or [])
        for arn in sorted(lane_arns - sources):
            errors.append(f"{where}: the DLQ's redrive allow policy leaves out {by_arn[arn]}")

    # Metric math: the backlog-per-task policy and the "start the first task" alarm.
    def sqs_visible(metric):
        return (metric.get("namespace") == "AWS/SQS"
                and metric.get("metric_name") == "ApproximateNumberOfMessagesVisible")

    policies = [r for r in tf_state.of_type(state, "aws_appautoscaling_policy")
                if r["values"].get("policy_type") == "TargetTrackingScaling"]
    tracked = 0
    for policy in policies:
        for ttc in policy["values"].get("target_tracking_scaling_policy_configuration") or []:
            for cms in ttc.get("customized_metric_specification") or []:
                queries = cms.get("metrics") or []
                if not queries:
                    continue
                tracked += 1
                loc = f"{where}: {policy['address']} metric math"
                metric_of = {}
                for q in queries:
                    for stat in q.get("metric_stat") or []:
                        for m in stat.get("metric") or []:
                            dims = {d["name"]: d["value"] for d in m.get("dimensions") or []}
                            metric_of[q["id"]] = (m, dims)
                check_math(loc, queries, metric_of, sqs_visible, lanes, errors, per_task=True)
    if tracked == 0:
        errors.append(f"{where}: no target tracking policy with metric math (backlog per task)")
    alarms = 0
    for alarm in tf_state.of_type(state, "aws_cloudwatch_metric_alarm"):
        queries = alarm["values"].get("metric_query") or []
        metric_of = {}
        for q in queries:
            for m in q.get("metric") or []:
                metric_of[q["id"]] = (m, m.get("dimensions") or {})
        if not any(sqs_visible(m) and dims.get("QueueName") != dlq["name"] for m, dims in metric_of.values()):
            continue
        alarms += 1
        check_math(f"{where}: {alarm['address']} metric math", queries, metric_of, sqs_visible,
                   lanes, errors, per_task=False)
    if alarms == 0:
        errors.append(f"{where}: no alarm watches the waiting jobs (the first task from zero)")

    # IAM.
    docs = {a.rsplit(".", 1)[-1]: r for a, r in res.items() if r["type"] == "aws_iam_policy_document"}
    needs = {
        "api": {"sqs:SendMessage": lane_arns, "sqs:GetQueueAttributes": lane_arns,
                "sqs:GetQueueUrl": lane_arns},
        "worker": {"sqs:ReceiveMessage": lane_arns, "sqs:DeleteMessage": lane_arns,
                   "sqs:ChangeMessageVisibility": lane_arns, "sqs:GetQueueAttributes": lane_arns,
                   "sqs:GetQueueUrl": lane_arns, "sqs:SendMessage": {dlq["arn"], completed["arn"]}},
    }
    for who, actions in needs.items():
        doc = docs.get(who)
        if doc is None:
            errors.append(f"{where}: no data.aws_iam_policy_document.{who}")
            continue
        for action, arns in actions.items():
            for arn in sorted(arns - allowed(doc, action)):
                errors.append(f"{where}: the {who} role may not {action} on {by_arn.get(arn, arn)}")
    if not errors:
        print(f"lanes_check: terraform: {len(lanes)} lane queues ({lanes[0]} ... {lanes[-1]}) alike "
              f"and redriving into {dlq['name']}; the backlog-per-task metric math and "
              f"{alarms} alarm(s) sum each lane once; IAM covers every lane")


def check_math(loc, queries, metric_of, sqs_visible, lanes, errors, per_task):
    """The returned expression must rest on a plain sum of one SQS metric per lane."""
    expressions = {q["id"]: q["expression"] for q in queries if q.get("expression")}
    lane_query = {}
    for qid, (metric, dims) in metric_of.items():
        if sqs_visible(metric):
            lane_query[qid] = dims.get("QueueName")

    def resolve(name, depth=0):
        if name in lane_query:
            return collections.Counter([lane_query[name]])
        if name in expressions and depth < 10:
            return sum_terms(expressions[name], lambda n: resolve(n, depth + 1))
        raise NotASum(f"{name!r} is neither an SQS queue metric nor a sum of them")

    returned = [q for q in queries if q.get("return_data")]
    if len(returned) != 1 or not returned[0].get("expression"):
        errors.append(f"{loc}: expected one returned expression, found {len(returned)}")
        return
    expr = returned[0]["expression"]
    names = [t for t in tokens_loose(expr) if t in expressions or t in lane_query]
    sums = []
    for name in names:
        try:
            sums.append((name, resolve(name)))
        except NotASum:
            continue
    if per_task:
        m = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*/\s*([A-Za-z_]\w*)\s*", expr)
        tasks_ok = m and metric_of.get(m.group(2), ({}, {}))[0].get("metric_name") == "RunningTaskCount"
        if not tasks_ok:
            errors.append(f"{loc}: the returned expression {expr!r} is not WAITING / RunningTaskCount")
            return
        try:
            counted = resolve(m.group(1))
        except NotASum as e:
            errors.append(f"{loc}: the backlog {m.group(1)!r} is not a plain sum of lane metrics: {e}")
            return
        exactly_once(loc, counted, lanes, errors, what="lane queue")
        return
    if not sums:
        errors.append(f"{loc}: the returned expression {expr!r} uses no sum of lane metrics")
        return
    for name, counted in sums:
        before = len(errors)
        exactly_once(f"{loc} ({name})", counted, lanes, errors, what="lane queue")
        if len(errors) > before:
            return


def tokens_loose(expression):
    return re.findall(r"[A-Za-z_][A-Za-z0-9_]*", expression)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rabbitmq", help="rendered RabbitMQ overlay (kubectl kustomize)")
    ap.add_argument("--sqs", help="rendered SQS overlay (kubectl kustomize)")
    ap.add_argument("--terraform-state", help="state JSON from tf_state.py extract")
    args = ap.parse_args()
    if not (args.rabbitmq or args.sqs or args.terraform_state):
        ap.error("nothing to check")
    failed = False
    for broker, path in (("rabbitmq", args.rabbitmq), ("sqs", args.sqs)):
        if path:
            errors = []
            check_overlay(path, broker, errors)
            failed |= bool(errors)
            for e in errors:
                print(e)
    if args.terraform_state:
        errors = []
        check_terraform(args.terraform_state, errors)
        failed |= bool(errors)
        for e in errors:
            print(e)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
