# The Stan peer of the bayesian model (bench/attribution.bench.ts): hazard.stan, the same
# groups (journeys by exposure set), the same priors, 4 chains x (warmup + draws), dense metric
# (dense_e, as skeldir's NUTS), target acceptance 0.8, chains one after another on one core
# (skeldir samples them sequentially too), inits dispersed around the hazard of the overall
# conversion rate as skeldir's are.
# Usage: Rscript hazard.R <groups.csv: n,y,mask> <K> <cache dir> <chains> <warmup> <draws> <seed>
# Prints one line of key=value pairs: compile_s (0 when the compiled model was cached),
# sampler_s (Stan's own warmup + sampling time, all chains), fit_s (the sampling() call),
# summary_s (summary(): R-hat, n_eff, means), fit_cpu_s and summary_cpu_s (CPU time of both), max_rhat, min_neff, divergences, mean_<param>, sd_<param>.
args <- commandArgs(trailingOnly = TRUE)
groups_file <- args[1]; K <- as.integer(args[2]); cache <- args[3]
chains <- as.integer(args[4]); warmup <- as.integer(args[5]); draws <- as.integer(args[6]); seed <- as.integer(args[7])
suppressMessages(library(rstan))
# Debian's r-cran-bh ships no headers: point rstan at libboost-dev's (/usr/include/boost) through
# a directory holding only a link to it (-I/usr/include itself would upset the compiler's own
# include order).
if (!file.exists(rstan_options("boost_lib"))) {
  if (!file.exists("/usr/include/boost")) stop("Boost headers not found: install libboost-dev (Debian) or the R package BH")
  inc <- file.path(cache, "boost-include")
  dir.create(inc, showWarnings = FALSE, recursive = TRUE)
  if (!file.exists(file.path(inc, "boost"))) file.symlink("/usr/include/boost", file.path(inc, "boost"))
  rstan_options(boost_lib = inc)
}
here <- dirname(normalizePath(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE))))
stan_file <- file.path(here, "hazard.stan")
dir.create(cache, showWarnings = FALSE, recursive = TRUE)
rds <- file.path(cache, paste0("hazard-", tools::md5sum(stan_file), ".rds"))
compile_s <- 0
if (file.exists(rds)) {
  model <- readRDS(rds)
} else {
  t0 <- proc.time()[["elapsed"]]
  model <- stan_model(stan_file)
  compile_s <- proc.time()[["elapsed"]] - t0
  saveRDS(model, rds)
}

g <- read.csv(groups_file)
X <- sapply(0:(K - 1), function(c) as.numeric(bitwAnd(g$mask, bitwShiftL(1L, c)) > 0))
if (is.null(dim(X))) X <- matrix(X, ncol = K)
data <- list(K = K, G = nrow(g), X = X, n = g$n, y = g$y, hazard_mean = -4, hazard_sd = 1, baseline_mean = -4, baseline_sd = 1)
rate <- min(0.99, max(1e-6, sum(g$y) / max(1, sum(g$n))))
base <- log(-log(1 - rate))
set.seed(seed)
inits <- lapply(1:chains, function(i) list(theta = base + runif(K) * 2 - 1, beta0 = base + runif(1) * 2 - 1))

cpu <- function() { p <- proc.time(); p[["user.self"]] + p[["sys.self"]] }
t0 <- proc.time()[["elapsed"]]; c0 <- cpu()
fit <- sampling(model, data = data, chains = chains, iter = warmup + draws, warmup = warmup, cores = 1, seed = seed,
                init = inits, refresh = 0, control = list(metric = "dense_e", adapt_delta = 0.8))
t1 <- proc.time()[["elapsed"]]; c1 <- cpu()
s <- summary(fit)$summary
t2 <- proc.time()[["elapsed"]]; c2 <- cpu()
params <- c(paste0("theta[", 1:K, "]"), "beta0")
out <- c(
  sprintf("compile_s=%.2f", compile_s),
  sprintf("sampler_s=%.4f", sum(get_elapsed_time(fit))),
  sprintf("fit_s=%.4f", t1 - t0),
  sprintf("summary_s=%.4f", t2 - t1),
  sprintf("fit_cpu_s=%.4f", c1 - c0),
  sprintf("summary_cpu_s=%.4f", c2 - c1),
  sprintf("max_rhat=%.5f", max(s[params, "Rhat"])),
  sprintf("min_neff=%.1f", min(s[params, "n_eff"])),
  sprintf("divergences=%d", get_num_divergent(fit)),
  sprintf("mean_%d=%.6f", seq_along(params), s[params, "mean"]),
  sprintf("sd_%d=%.6f", seq_along(params), s[params, "sd"])
)
cat(paste(out, collapse = " "), "\n")
