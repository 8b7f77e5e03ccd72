# For tests/e2e/run: every Prometheus query of a Grafana dashboard, ready to send to
# /api/v1/query. Input: the dashboard JSON (plain, or wrapped as {"dashboard": ...}).
# Output: one object per query, {kind, panel, ref, expr, unresolved, needs}:
#   kind "panel": a panel target's expr (panels walked recursively, rows' nested panels included);
#   kind "variable": a query variable, `label_values(M, L)` turned into `count by (L) (M)`,
#     `label_values(L)` into `count by (L) ({L!=""})`, `query_result(Q)` into Q.
# Variables are replaced the way Grafana would with "All" selected: query, custom and textbox
# variables by `.*` (they belong in =~ matchers), constants by their value, interval variables
# by their current value; Grafana's own $__rate_interval and $__interval by 1m and 30s, $__range
# by 5m. A variable the dashboard does not define is left in place and listed in .unresolved.
# .needs names what the exporter must be configured with for the query to have data: "dmarc"
# when it reads a dkim_dmarc_* series (only with `dmarc:` sources), else null.

def builtins:
  {"__rate_interval": "1m", "__interval": "30s", "__interval_ms": "30000",
   "__range": "5m", "__range_s": "300", "__range_ms": "300000", "__auto_interval": "30s"};

def value_of_variable:
  if .type == "constant" then (.query // "" | tostring)
  elif .type == "interval" then
    ((.current.value // ((.query // "1m") | tostring | split(",")[0])) | tostring
     | if startswith("$__auto") then "30s" else . end)
  elif .type == "datasource" then ""
  else ".*"
  end;

def substitute($vals):
  def lookup($name; $orig): if $vals | has($name) then $vals[$name] else $orig end;
  gsub("\\$\\{(?<n>[A-Za-z0-9_]+)(?<f>:[^}]*)?\\}"; lookup(.n; "${" + .n + "}"))
  | gsub("\\[\\[(?<n>[A-Za-z0-9_]+)(?<f>:[^\\]]*)?\\]\\]"; lookup(.n; "[[" + .n + "]]"))
  | gsub("\\$(?<n>[A-Za-z0-9_]+)"; lookup(.n; "$" + .n));

def unresolved: [scan("\\$\\{?[A-Za-z_][A-Za-z0-9_]*|\\[\\[[A-Za-z0-9_]+")] | unique;

def needs: if test("\\bdkim_dmarc_[a-z0-9_]+") then "dmarc" else null end;

def all_panels: .[]? | ., ((.panels // []) | all_panels);

(if has("dashboard") and (.dashboard | type) == "object" then .dashboard else . end) as $d
| ($d.templating.list // []) as $vars
| (builtins + ([$vars[] | {(.name): value_of_variable}] | add // {})) as $vals
| (
    ( [($d.panels // []) | all_panels] + [($d.rows // [])[] | (.panels // []) | all_panels] )[]
    | . as $p
    | ($p.targets // [])[]
    | select((.expr // "") != "")
    | select((.datasource | type) != "object" or (.datasource.type // "prometheus") == "prometheus")
    | (.expr | substitute($vals)) as $expr
    | {kind: "panel", panel: ($p.title // "(untitled \($p.type // "panel") id \($p.id // "?"))"),
       ref: (.refId // ""), expr: $expr, unresolved: ($expr | unresolved), needs: ($expr | needs)}
  ),
  (
    $vars[]
    | select(.type == "query")
    | ((.query | if type == "object" then .query else . end) // "" | tostring) as $q
    | select($q != "")
    | ($q | substitute($vals)) as $q
    | (if ($q | test("^\\s*label_values\\(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*\\)\\s*$")) then
         ($q | capture("label_values\\(\\s*(?<l>[A-Za-z_][A-Za-z0-9_]*)") | "count by (\(.l)) ({\(.l)!=\"\"})")
       elif ($q | test("^\\s*label_values\\(")) then
         ($q | capture("^\\s*label_values\\((?<m>.*),\\s*(?<l>[A-Za-z_][A-Za-z0-9_]*)\\s*\\)\\s*$")
          | "count by (\(.l)) (\(.m))")
       elif ($q | test("^\\s*query_result\\(")) then
         ($q | capture("^\\s*query_result\\((?<e>.*)\\)\\s*$") | .e)
       else null
       end) as $expr
    | select($expr != null)
    | {kind: "variable", panel: "variable $\(.name)", ref: "", expr: $expr,
       unresolved: ($expr | unresolved), needs: ($expr | needs)}
  )
