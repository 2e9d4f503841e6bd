-- wrk reporter: one machine-readable line with requests/s, p95 and errors.
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p95_ms=%.2f p50_ms=%.2f requests=%d errors=%d non2xx=%d\n",
    summary.requests / seconds, latency:percentile(95) / 1000, latency:percentile(50) / 1000,
    summary.requests, errors, summary.errors.status))
end
