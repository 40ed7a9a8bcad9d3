// The bayesian model of src/attribution/bayesian-model.ts, for the Stan peer of
// bench/attribution.bench.ts: a journey exposed to channel set S converts with probability
// 1 - exp(-(lambda0 + sum_{c in S} lambda_c)), lambda_c = exp(theta_c), lambda0 = exp(beta0);
// theta_c ~ normal(-4, 1), beta0 ~ normal(-4, 1); binomial likelihood over the journeys grouped
// by exposure set (the binomial coefficient is a constant and left out, as skeldir does).
data {
  int<lower=1> K;                      // channels
  int<lower=1> G;                      // exposure sets (groups)
  matrix<lower=0, upper=1>[G, K] X;    // X[g, c] = 1 when group g's journeys touched channel c
  int<lower=0> n[G];             // journeys per group
  int<lower=0> y[G];            // conversions per group
  real hazard_mean;
  real<lower=0> hazard_sd;
  real baseline_mean;
  real<lower=0> baseline_sd;
}
transformed data {
  vector[G] yv = to_vector(y);
  vector[G] nonconv = to_vector(n) - yv;
}
parameters {
  vector[K] theta;
  real beta0;
}
model {
  vector[G] L = exp(beta0) + X * exp(theta);
  theta ~ normal(hazard_mean, hazard_sd);
  beta0 ~ normal(baseline_mean, baseline_sd);
  target += dot_product(yv, log1m_exp(-L)) - dot_product(nonconv, L);
}
