# Helpers for tests/e2e/run: which alert rules cover which problem, SES problem or resolver, and
# what the alerts say.
#
# The rules are read from Prometheus's /api/v1/rules, so the test follows whatever
# deploy/prometheus/dkim-alerts.yml names its alerts: an alert "covers" a problem when a
# `problem` matcher in its expression selects that problem name (e.g. problem="target_typo",
# or problem=~"target_typo|wrong_target"; see covers below). Of the rules covering a problem,
# the most specific ones (those selecting the fewest problem names) are the ones expected to
# fire, so a catch-all "any problem" alert cannot stand in for a broken specific one. A rule that
# aggregates the selector away (DKIMDomainNotFound: one alert per domain) is matched on the
# domain alone.
#
# Nothing else may fire for a record: a broken record may raise only the alerts expected for its
# problem and for the problems that come with it (the causes of a missing record come with
# `missing`), and a correct record or a healthy domain none at all. Resolver alerts (rules on
# dkim_resolver_up) are expected for the resolvers the test breaks, and for no other.
#
# Amazon SES identities: the rules on dkim_ses_identity_problem covering an SES problem (the
# most specific ones, as above) are expected to fire for the identity (source, region, domain)
# that has it, and no SES alert may fire for an identity (or a domain) without that problem.
# An alert that carries a source and no domain (DKIMSESDiscoveryFailing, DMARCSourceDown) may not
# fire at all: the test never breaks SES discovery or a DMARC source. Prometheus does not inhibit: an alert that Alertmanager would
# silence (deploy/alertmanager/alertmanager.yml) is expected here all the same.

# Every problem name in /work/shared/CONTRACT.md (version 0.3).
def problems:
  ["missing", "not_propagated", "wrong_target", "target_typo", "wrong_region", "a_record",
   "cname_flattened", "txt_instead_of_cname", "doubled_domain", "missing_underscore",
   "domain_not_found", "unresolvable", "dnssec_bogus", "key_missing", "key_invalid", "key_weak",
   "key_testing", "key_sha1_only", "key_multiple", "dnssec_expiring", "failing_at_receivers"];

# Every SES problem name in /work/shared/CONTRACT.md (dkim_ses_identity_problem).
def ses_problems:
  ["ses_signing_disabled", "ses_failed", "ses_temporary_failure", "ses_pending_too_long",
   "ses_status_disagrees"];

# The problems that come with a problem on the same record, whose alerts may fire with its own
# (docs/problems.md, Troubleshooting: "The causes of a missing record ... come with missing").
def companions:
  {"a_record": ["missing"], "cname_flattened": ["missing"], "txt_instead_of_cname": ["missing"],
   "doubled_domain": ["missing"], "missing_underscore": ["missing"]};

# [operator, value] of each matcher of label $lname in a PromQL expression as Prometheus prints it.
def label_matchers($lname):
  [scan("\\b" + $lname + "\\s*(=~|!=|!~|=)\\s*\"((?:[^\"\\\\]|\\\\.)*)\"")
   | [.[0], (.[1] | gsub("\\\\\\\\"; "\\\\"))]];

def problem_matchers: label_matchers("problem");

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

# Input: alerting rules. Output: the names of the most specific rules covering problem $p (those
# selecting the fewest of the problem names $all), or [] when none covers it.
def most_specific($p; $all):
  map(select(covers($p)))
  | map(. as $r | {name, n: ([$all[] | select(. as $q | $r | covers($q))] | length)})
  | if length == 0 then []
    else (map(.n) | min) as $min | map(select(.n == $min) | .name) | unique
    end;
def most_specific($p): most_specific($p; problems);

# Input: /api/v1/rules. $exp: [{domain, selector, problem}]. $fallback: {problem: alertname} for
# rules written without a problem matcher. Output: $exp with .alerts (alert names expected to
# fire), .how (how they were chosen) and .allowed (the alerts that may fire for the record: its
# own and its companions').
def expected_alerts($exp; $fallback):
  alerting_rules as $rules
  | def by_problem($p):
      ($rules | most_specific($p)) as $names
      | if ($names | length) > 0 then
          {alerts: $names, how: "rules whose problem matcher selects \($p)"}
        elif ($fallback[$p] != null) and ($rules | any(.name == $fallback[$p])) then
          {alerts: [$fallback[$p]], how: "by name (no rule has a problem matcher for \($p))"}
        else
          {alerts: [], how: "no alert rule covers problem \($p)"}
        end;
    $exp
  | map(. as $e
      | by_problem($e.problem) as $own
      | $e + $own
      + {allowed: ($own.alerts + [(companions[$e.problem] // [])[] | by_problem(.).alerts[]] | unique)});

# Input: /api/v1/rules. $exp: [{source, region, domain, problem}], the SES problems the
# identities have. Output: $exp with .alerts (the most specific rules on dkim_ses_identity_problem
# whose problem matcher selects the problem) and .how.
def expected_ses_alerts($exp):
  [alerting_rules[] | select(.query | test("\\bdkim_ses_identity_problem\\b"))] as $rules
  | $exp
  | map(. as $e
      | ($rules | most_specific($e.problem; ses_problems)) as $names
      | $e + if ($names | length) > 0 then
               {alerts: $names, how: "rules on dkim_ses_identity_problem whose problem matcher selects \($e.problem)"}
             else
               {alerts: [], how: "no alert rule covers SES problem \($e.problem)"}
             end);

# Input: /api/v1/rules. $down: [resolver name]. Output: [{resolver, alerts}], the rules on
# dkim_resolver_up whose resolver matchers all accept the resolver's name.
def expected_resolver_alerts($down):
  [alerting_rules[] | select(.query | test("\\bdkim_resolver_up\\b"))] as $rules
  | $down
  | map(. as $r
      | {resolver: $r,
         alerts: [$rules[] | select(all(.query | label_matchers("resolver")[]; accepts($r))) | .name]
                 | unique});

# Input: /api/v1/alerts. $exp: output of expected_alerts. $rexp: output of
# expected_resolver_alerts. $sexp: output of expected_ses_alerts. $clean_domains: [domain], the
# domains no alert may fire for. $clean: records [{domain, selector}] that are correct. Output:
# the firing and pending alerts, which expectations are met (met: records, rmet: resolvers,
# smet: SES identities), and the violations: alerts firing for a clean domain or a correct
# record, alerts other than the allowed ones firing for a broken record or an SES identity with a
# problem, resolver alerts firing for a resolver not expected to be down, SES source alerts.
def evaluate($exp; $rexp; $sexp; $clean_domains; $clean):
  [.data.alerts[] | {state, alertname: .labels.alertname, domain: .labels.domain,
                     selector: .labels.selector, problem: .labels.problem,
                     resolver: .labels.resolver, source: .labels.source,
                     region: .labels.region}] as $all
  | ($all | map(select(.state == "firing"))) as $firing
  | def is_clean:
      . as $a
      | any($clean_domains[]; . == $a.domain)
        or ($clean | any(.domain == $a.domain and .selector == $a.selector));
    # For an alert of a domain with broken records: the alert names that may fire for it. A
    # domain-wide alert (no selector) may fire when one of the domain's records allows it.
    # An SES alert (it has a source) may fire for an identity with the SES problems that expect it.
    def allowed_for_broken:
      . as $a
      | [($exp[] | select(.domain == $a.domain and ($a.selector == null or .selector == $a.selector))
          | .allowed[]),
         ($sexp[] | select($a.source != null and .source == $a.source and .region == $a.region
                           and .domain == $a.domain and $a.selector == null)
          | .alerts[])] | unique;
  {
    firing: $firing,
    pending: ($all | map(select(.state == "pending"))),
    met: [$exp[] | . as $e
          | select(($e.alerts | length) > 0
                   and all($e.alerts[]; . as $name
                       | $firing | any(.alertname == $name and .domain == $e.domain
                                       and (.selector == null or .selector == $e.selector))))
          | {domain, selector, problem}],
    rmet: [$rexp[] | . as $e
           | select(($e.alerts | length) > 0
                    and all($e.alerts[]; . as $name
                        | $firing | any(.alertname == $name and .resolver == $e.resolver)))
           | {resolver}],
    smet: [$sexp[] | . as $e
           | select(($e.alerts | length) > 0
                    and all($e.alerts[]; . as $name
                        | $firing | any(.alertname == $name and .source == $e.source
                                        and .region == $e.region and .domain == $e.domain)))
           | {source, region, domain, problem}],
    violations: (
      [$firing[] | select(.domain != null) | select(is_clean) | . + {why: "clean"}]
      + [$firing[] | select(.domain != null) | select(is_clean | not)
         | . as $a | allowed_for_broken as $allowed
         | select(any($allowed[]; . == $a.alertname) | not)
         | . + {why: "broken", allowed: $allowed}]
      + [$firing[] | select(.resolver != null) | . as $a
         | select(any($rexp[]; .resolver == $a.resolver and any(.alerts[]; . == $a.alertname)) | not)
         | . + {why: "resolver"}]
      + [$firing[] | select(.source != null and .domain == null) | . + {why: "source"}]
    ),
    clean_pending: [$all[] | select(.state == "pending" and .domain != null) | select(is_clean)]
  };

# Input: one violation from evaluate. Output: the line that reports it.
def violation_text:
  if .why == "resolver" then
    "\(.alertname) fired for resolver \(.resolver), which the test does not break"
  elif .why == "source" then
    "\(.alertname) fired for the source \(.source) (SES or DMARC), which the test does not break"
  elif .why == "broken" then
    "\(.alertname) fired for \(if .source != null and .selector == null
                                then "the SES identity \(.domain) (source \(.source), region \(.region // "-"))"
                              elif .selector == null then "the domain \(.domain)"
                              else "the broken record \(.selector)._domainkey.\(.domain)" end)"
    + (if .problem != null then " (problem \(.problem))" else "" end)
    + (if (.allowed | length) > 0 then ", where only \(.allowed | join(", ")) may fire"
       else ", which expects no alert" end)
  else
    "\(.alertname) fired for \(if .source != null and .selector == null
                                then "the SES identity \(.domain) (source \(.source)), which has no SES problem"
                              elif .selector == null then "the healthy domain \(.domain)"
                              else "the correct record \(.selector)._domainkey.\(.domain)" end)"
    + (if .problem != null then " (problem \(.problem))" else "" end)
  end;
