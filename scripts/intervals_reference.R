# Reference values for sepfit's confidence intervals (crates/sepfit/tests/intervals.rs).
#
#   Rscript scripts/intervals_reference.R      # from the repository root; R >= 4.2 with MASS
#
# For each problem: fit with nls (Gauss-Newton on all parameters, tight tolerance), then write
#   * data/reference/intervals/<problem>.csv   the data (so that the tests need no R),
#   * one row per parameter to data/reference/intervals/intervals_R.csv:
#     estimate, std_error (summary.nls), dof, rss,
#     wald_z_*   confint.default(fit, level = 0.95)         (normal quantile),
#     wald_t_*   coef -/+ qt(0.975, dof) * se               (t quantile),
#     profile_*  confint(fit, level = 0.95)                 (MASS: spline through the profile tau),
#     exact_*    uniroot of |tau(v)| = qt(0.975, dof) with tau(v) = sign * sqrt((S(v) - S)/s^2),
#                S(v) the RSS of nls with the parameter held at v (the definition R's spline
#                interpolates; its ends differ from confint's by the spline's error).
suppressPackageStartupMessages(library(MASS))
dir <- "data/reference/intervals"
level <- 0.95
rows <- list()

read_nist <- function(path) {
  l <- readLines(path)
  start <- tail(grep("^Data:", l), 1)
  d <- read.table(text = l[(start + 1):length(l)])
  names(d) <- strsplit(trimws(sub("^Data:", "", l[start])), " +")[[1]]
  d
}

# nls at the tightest relative-offset tolerance it reaches (1e-10 down to 1e-7): rounding stops
# some problems short of the tightest.
tight_nls <- function(form, data, start, weights) {
  for (tol in c(1e-10, 1e-9, 1e-8, 1e-7)) {
    control <- nls.control(maxiter = 1000, tol = tol, minFactor = 1e-12)
    fit <- tryCatch(if (is.null(weights)) nls(form, data, start = start, control = control)
                    else nls(form, data, start = start, control = control, weights = weights),
                    error = function(e) NULL)
    if (!is.null(fit)) return(fit)
  }
  stop("nls did not converge at 1e-7")
}

# S(v): RSS of the model with parameter `p` held at v, the others refitted from `start`.
profile_rss <- function(form, data, start, p, v, weights) {
  f2 <- do.call(substitute, list(form, setNames(list(v), p)))
  st <- start[names(start) != p]
  deviance(tight_nls(f2, data, st, weights))
}

exact_end <- function(form, data, fit, p, sgn, weights) {
  est <- coef(fit); se <- summary(fit)$coefficients[, 2]
  dof <- df.residual(fit); s2 <- deviance(fit) / dof; q <- qt(1 - (1 - level) / 2, dof)
  tau <- function(v) sqrt(max(profile_rss(form, data, est, p, v, weights) - deviance(fit), 0) / s2) - q
  h <- q * se[[p]]
  while (tau(est[[p]] + sgn * h) < 0) h <- 2 * h
  r <- uniroot(tau, sort(c(est[[p]], est[[p]] + sgn * h)), tol = 1e-13 * se[[p]], maxiter = 200)
  r$root
}

problem <- function(name, form, data, start, weights = NULL) {
  write.csv(data, file.path(dir, paste0(name, ".csv")), row.names = FALSE)
  fit <- tight_nls(form, data, start, weights)
  cat(sprintf("%s: nls converged to a relative offset of %.1e\n", name, fit$convInfo$finTol))
  s <- summary(fit)$coefficients
  dof <- df.residual(fit)
  wz <- confint.default(fit, level = level)
  q <- qt(1 - (1 - level) / 2, dof)
  # confint re-fits with the call's control; R's default tolerance (1e-5), as a user's fit has
  # (the profile re-fits do not all reach 1e-9).
  fit_default <- fit
  fit_default$call$control <- nls.control(maxiter = 1000)
  pr <- suppressMessages(confint(fit_default, level = level))
  if (is.null(dim(pr))) pr <- matrix(pr, nrow = 1, dimnames = list(names(coef(fit)), NULL))
  for (p in names(coef(fit))) {
    rows[[length(rows) + 1]] <<- data.frame(
      problem = name, parameter = p, estimate = coef(fit)[[p]], std_error = s[p, 2], dof = dof, rss = deviance(fit),
      wald_z_lower = wz[p, 1], wald_z_upper = wz[p, 2],
      wald_t_lower = coef(fit)[[p]] - q * s[p, 2], wald_t_upper = coef(fit)[[p]] + q * s[p, 2],
      profile_lower = pr[p, 1], profile_upper = pr[p, 2],
      exact_lower = exact_end(form, data, fit, p, -1, weights), exact_upper = exact_end(form, data, fit, p, 1, weights))
  }
}

puro <- Puromycin[Puromycin$state == "treated", c("conc", "rate")]
problem("puromycin", quote(rate ~ Vm * conc / (K + conc)), puro, c(Vm = 200, K = 0.05))
problem("bod", quote(demand ~ A * (1 - exp(-exp(lrc) * Time))), BOD, c(A = 20, lrc = log(0.35)))
dnase1 <- DNase[DNase$Run == 1, c("conc", "density")]
problem("dnase1", quote(density ~ Asym / (1 + exp((xmid - log(conc)) / scal))), dnase1, c(Asym = 3, xmid = 0, scal = 1))
problem("misra1a", quote(y ~ b1 * (1 - exp(-b2 * x))), read_nist("data/nist/Misra1a.dat"), c(b1 = 500, b2 = 1e-4))
dexp <- read.csv("data/problems/dexp_1000.csv")
problem("dexp1000", quote(y ~ a1 * exp(-t / tau1) + a2 * exp(-t / tau2) + c), dexp, c(a1 = 1, a2 = 2, tau1 = 0.5, tau2 = 3, c = 0.1))
# Weighted (R's weights = 1/sigma^2): Puromycin with weights 1/sqrt(conc).
puro_w <- cbind(puro, w = 1 / sqrt(puro$conc))
problem("puromycin_weighted", quote(rate ~ Vm * conc / (K + conc)), puro_w, c(Vm = 200, K = 0.05), weights = puro_w$w)

out <- do.call(rbind, rows)
write.csv(format(out, digits = 17), file.path(dir, "intervals_R.csv"), row.names = FALSE, quote = FALSE)
cat(sprintf("R %s, MASS %s: %d parameters of %d problems written to %s\n", getRversion(), packageVersion("MASS"), nrow(out), length(unique(out$problem)), dir))
