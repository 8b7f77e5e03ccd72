# Helpers for tests/e2e/run: which alert rules cover which problem, and what the alerts say.
#
# The rules are read from Prometheus's /api/v1/rules, so the test follows whatever
# deploy/prometheus/dkim-alerts.yml names its alerts: an alert "covers" a problem when a
# `problem` matcher in its expression selects that problem name (e.g. problem="target_typo",
# or problem=~"target_typo|wrong_target"; see covers below). Of the rules covering a problem,
# the most specific ones (those selecting the fewest problem names) are the ones expected to
# fire, so a catch-all "any problem" alert cannot stand in for a broken specific one.

# Every problem name in /work/shared/CONTRACT.md.
def problems:
  ["missing", "not_propagated", "wrong_target", "target_typo", "wrong_region", "a_record",
   "txt_instead_of_cname", "doubled_domain", "missing_underscore", "key_missing",
   "key_invalid", "key_weak"];

# [operator, value] of each `problem` label matcher in a PromQL expression as Prometheus prints it.
def problem_matchers:
  [scan("\\bproblem\\s*(=~|!=|!~|=)\\s*\"((?:[^\"\\\\]|\\\\.)*)\"")
   | [.[0], (.[1] | gsub("\\\\\\\\"; "\\\\"))]];

def accepts($p):
  .[0] as $op | .[1] as $v
  | if $op == "=" then $p == $v
    elif $op == "!=" then $p != $v
    elif $op == "=~" then ($p | test("^(?:" + $v + ")$"))
    else ($p | test("^(?:" + $v + ")$") | not)
    end;

# True when the alerting rule (an object with .query) selects problem $p: one of its positive
# problem matchers (= or =~) accepts $p, or, when it has only negative ones (!= or !~), all of them
# do. (A rule like `problem="missing" ... unless ... problem="not_propagated"` covers missing.)
def covers($p):
  (.query | problem_matchers) as $m
  | ($m | map(select(.[0] == "=" or .[0] == "=~"))) as $pos
  | if ($pos | length) > 0 then any($pos[]; accepts($p))
    else ($m | length) > 0 and all($m[]; accepts($p))
    end;

def alerting_rules: [.data.groups[].rules[] | select(.type == "alerting")];

# Input: /api/v1/rules. $exp: [{domain, selector, problem}]. $fallback: {problem: alertname} for
# rules written without a problem matcher. Output: $exp with .alerts (alert names expected to
# fire) and .how (how they were chosen).
def expected_alerts($exp; $fallback):
  alerting_rules as $rules
  | $exp
  | map(. as $e
      | ($rules
         | map(select(covers($e.problem)))
         | map(. as $r | {name, n: ([problems[] | select(. as $q | $r | covers($q))] | length)})) as $cov
      | if ($cov | length) > 0 then
          ($cov | map(.n) | min) as $min
          | $e + {alerts: ($cov | map(select(.n == $min) | .name) | unique),
                  how: "rules whose problem matcher selects \($e.problem)"}
        elif ($fallback[$e.problem] != null) and ($rules | any(.name == $fallback[$e.problem])) then
          $e + {alerts: [$fallback[$e.problem]], how: "by name (no rule has a problem matcher for \($e.problem))"}
        else
          $e + {alerts: [], how: "no alert rule covers problem \($e.problem)"}
        end);

# Input: /api/v1/alerts. $exp: output of expected_alerts. $clean_domains: [domain]. $clean: records
# [{domain, selector}] that are correct. Output: the firing and pending alerts, which expectations
# are met, and the violations (alerts firing for a healthy domain or a correct record).
def evaluate($exp; $clean_domains; $clean):
  [.data.alerts[] | {state, alertname: .labels.alertname, domain: .labels.domain,
                     selector: .labels.selector, problem: .labels.problem}] as $all
  | ($all | map(select(.state == "firing"))) as $firing
  | {
      firing: $firing,
      pending: ($all | map(select(.state == "pending"))),
      met: [$exp[] | . as $e
            | select(($e.alerts | length) > 0
                     and all($e.alerts[]; . as $name
                         | $firing | any(.alertname == $name and .domain == $e.domain
                                         and (.selector == null or .selector == $e.selector))))
            | {domain, selector, problem}],
      violations: [$firing[]
                   | select(.domain != null)
                   | . as $a
                   | select(any($clean_domains[]; . == $a.domain)
                            or ($clean | any(.domain == $a.domain and .selector == $a.selector)))],
      clean_pending: [$all[] | select(.state == "pending" and .domain != null)
                      | . as $a
                      | select(any($clean_domains[]; . == $a.domain)
                               or ($clean | any(.domain == $a.domain and .selector == $a.selector)))]
    };

# Input: one violation from evaluate. Output: the line that reports it.
def violation_text:
  "\(.alertname) fired for \(if .selector == null then "the healthy domain \(.domain)"
                            else "the correct record \(.selector)._domainkey.\(.domain)" end)"
  + (if .problem != null then " (problem \(.problem))" else "" end);
