-- wrk script: blackbox_exporter /probe with the dns_cname module, rotating over the 4 Knot addresses.
local i = 0
request = function()
  i = i % 4 + 1
  return wrk.format("GET", string.format("/probe?module=dns_cname&target=127.0.0.%d:53", 100 + i))
end
