# The Markov removal-effect solve of bench/attribution.bench.ts, in base R, on the same journeys.
# Input: a little-endian int32 file written by the bench: n, k, total touches; pathStart (n + 1,
# 0-based offsets); pathChannels (total, channel ids 0..k-1); converted (n, 0/1).
# Transition counts by one vectorised tabulate over every (from, to) pair, then the same linear
# systems as src/attribution/markov.ts: (I - Q) x = r with base R's solve (LAPACK), once with every
# channel and once per channel with its column of Q zeroed.
# Prints one line of key=value pairs: read_s, solve_s (counts + solves), p, re (comma-separated).
args <- commandArgs(trailingOnly = TRUE)
t0 <- proc.time()[["elapsed"]]
con <- file(args[1], "rb")
hdr <- readBin(con, "integer", 3, size = 4, endian = "little")
n <- hdr[1]; k <- hdr[2]; total <- hdr[3]
start <- readBin(con, "integer", n + 1, size = 4, endian = "little")
chans <- readBin(con, "integer", total, size = 4, endian = "little")
conv <- readBin(con, "integer", n, size = 4, endian = "little")
close(con)
t1 <- proc.time()[["elapsed"]]

# States: 0 = START, c + 1 = channel c. Columns: c + 1 = to channel c, k + 1 = CONVERSION, k + 2 = NULL.
first <- start[-(n + 1)] + 1L          # 1-based index of each journey's first touch
last <- start[-1]                      # and of its last
from <- c(0L, chans[-total] + 1L)      # the state before each touch ...
from[first] <- 0L                      # ... START for a journey's first touch
to <- chans + 1L
end_from <- chans[last] + 1L
end_to <- ifelse(conv == 1L, k + 1L, k + 2L)
cols <- k + 2L
counts <- matrix(tabulate(c(from * cols + to, end_from * cols + end_to), (k + 1L) * cols), nrow = k + 1L, byrow = TRUE)
tot <- rowSums(counts)
visited <- tot > 0
P <- counts / ifelse(visited, tot, 1)
A <- diag(k + 1L)
A[, 2:(k + 1L)] <- A[, 2:(k + 1L)] - P[, 1:k]
b <- P[, k + 1L]
p <- solve(A, b)[1]
pw <- vapply(1:k, function(c) {
  if (!visited[c + 1L] || p == 0) return(p)
  A2 <- A
  A2[, c + 1L] <- 0
  A2[c + 1L, c + 1L] <- 1
  solve(A2, b)[1]
}, numeric(1))
re <- if (p == 0) rep(0, k) else pmin(1, pmax(0, 1 - pw / p))
t2 <- proc.time()[["elapsed"]]
cat(sprintf("read_s=%.4f solve_s=%.4f p=%.17g re=%s\n", t1 - t0, t2 - t1, p, paste(sprintf("%.17g", re), collapse = ",")))
