-- wrk script: /probe?target=dNNNNN.bench, rotating over the BENCH_N configured domains.
local n = tonumber(os.getenv("BENCH_N") or "1000")
local i = math.random(n)
request = function()
  i = i % n + 1
  return wrk.format("GET", string.format("/probe?target=d%05d.bench", i))
end
